/**
 * The producer: puts images into a batch, idempotently, from items or from input files (txt / csv / jsonl).
 *
 * ```ts
 * const rt = createRuntime(loadConfig());
 * const { batchId, enqueued, rejected } = await enqueueFile(rt, 'images.csv', { model: 'topaz/image-upscale', factor: 4 });
 * await rt.close();
 * ```
 *
 * Every line is validated before anything is stored for it; a bad line is reported (line number, input, reason)
 * and the others are enqueued. Enqueuing the same input into the same batch again adds nothing.
 */
import type { Runtime } from '../runtime.js';
import { enqueueLines } from './enqueue.js';
import { hasMeta, metaFromValues } from './meta.js';
import { parseInput } from './parse.js';
import type {
  EnqueueFileOptions,
  EnqueueItem,
  EnqueueOptions,
  EnqueueProgress,
  EnqueueResult,
  ParsedLine,
} from './types.js';
import type { InputSource } from './source.js';

export * from './types.js';
export { EnqueueError, InputError, isInputError } from './errors.js';
export { checkEnqueueOptions, enqueueLines, DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE } from './enqueue.js';
export { parseInput, formatFromPath, sniffFormat, parseJsonLine, type ParseHooks } from './parse.js';
export { checkInputFile, type InputSource, type SourceInfo } from './source.js';
export { checkInput, checkLocalFile, validateLine, type ValidImage, type Validation } from './validate.js';
export { isPrivateAddress, literalHostPolicy } from './address-policy.js';
export { MAX_META_KEYS, MAX_META_VALUE_CHARS, META_KEY_PATTERN, metaProblem, type Meta } from './meta.js';

async function* fromItems(
  items: Iterable<EnqueueItem> | AsyncIterable<EnqueueItem>,
): AsyncGenerator<ParsedLine> {
  let position = 0;
  for await (const item of items) {
    position += 1;
    const line: ParsedLine = { line: item.line ?? position, input: item.input };
    if (item.model !== undefined) line.model = item.model;
    if (item.factor !== undefined) line.factor = item.factor;
    if (item.meta !== undefined && item.meta !== null) {
      const built = metaFromValues(Object.entries(item.meta as Record<string, unknown>));
      if (built.ok) {
        if (hasMeta(built.meta)) line.meta = built.meta;
      } else line.reason = built.reason;
    }
    yield line;
  }
}

/**
 * Enqueues images given as items. Items without a model or factor take `opts.model` / `opts.factor`.
 * Resolves with the counts and every rejection; rejects with `InputError` for bad options (nothing stored) or
 * `EnqueueError` when Redis fails part-way (run again with the same batch id to continue).
 */
export function enqueue(
  rt: Runtime,
  items: Iterable<EnqueueItem> | AsyncIterable<EnqueueItem>,
  opts: EnqueueOptions = {},
): Promise<EnqueueResult> {
  return enqueueLines(rt, fromItems(items), opts);
}

/**
 * Enqueues the images of an input file: a path, `-` for standard input, or a readable stream. The format comes
 * from `opts.format`, else the extension, else the first meaningful line. Streams with bounded memory.
 * A missing, unreadable or directory path, or a CSV without a url column, rejects with `InputError`.
 */
export function enqueueFile(
  rt: Runtime,
  source: InputSource,
  opts: EnqueueFileOptions = {},
): Promise<EnqueueResult> {
  const { format, encoding, ...rest } = opts;
  const progress: Partial<EnqueueProgress> = {};
  const lines = parseInput(source, format, {
    ...(encoding ? { encoding } : {}),
    onOpen: (info) => {
      progress.bytesRead = 0;
      if (info.size !== undefined) progress.totalBytes = info.size;
    },
    onBytes: (n) => {
      progress.bytesRead = (progress.bytesRead ?? 0) + n;
    },
  });
  return enqueueLines(rt, lines, rest, () => ({ ...progress }));
}
