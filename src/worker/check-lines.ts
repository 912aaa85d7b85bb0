/**
 * The submit lane's pre-flight, run over input lines before they are enqueued (`upscale enqueue --check`) or
 * priced (`upscale estimate --probe`). Each line is validated as the producer does (model, factor, input), then
 * the image's head is read and checked. Lines come out in their input order, with up to `concurrency` checks
 * running at once.
 */
import { validateLine, type ValidImage } from '../producer/validate.js';
import type { ParsedLine } from '../producer/types.js';
import { preflight, type ImageFacts, type PreflightOptions } from './preflight.js';

export interface CheckLinesOptions {
  /** Relative paths are resolved against this. @defaultValue `process.cwd()` */
  cwd?: string;
  defaultModel?: string | undefined;
  defaultFactor?: string | number | undefined;
  preflight: PreflightOptions;
  /** Checks running at once. @defaultValue `8` */
  concurrency?: number;
}

export interface CheckedLine {
  parsed: ParsedLine;
  /** The validated image, or null when the line is invalid (`reason` says why). */
  image: ValidImage | null;
  /** What the pre-flight read (null when it was not run or failed). */
  facts: ImageFacts | null;
  /** Why the line would be rejected or the image would fail; undefined when it passes. */
  reason?: string;
}

async function checkOne(parsed: ParsedLine, opts: CheckLinesOptions): Promise<CheckedLine> {
  const validation = await validateLine(parsed, {
    cwd: opts.cwd ?? process.cwd(),
    allowPrivateUrls: opts.preflight.allowPrivate,
    defaultModel: opts.defaultModel,
    defaultFactor: opts.defaultFactor,
  });
  if (!validation.ok) return { parsed, image: null, facts: null, reason: validation.rejection.reason };
  const image = validation.image;
  const target = /^https?:/i.test(image.input) ? { url: image.input } : { path: image.input };
  const result = await preflight(target, image.model, image.factor, opts.preflight);
  if (!result.ok) {
    const what = result.kind === 'access' ? 'pre-flight (access refused)' : 'pre-flight';
    return { parsed, image, facts: null, reason: `${what}: ${result.reason}` };
  }
  return { parsed, image, facts: result.facts };
}

/** `checkOne` that never rejects (a pending check must not become an unhandled rejection). */
function safeCheck(parsed: ParsedLine, opts: CheckLinesOptions): Promise<CheckedLine> {
  return checkOne(parsed, opts).catch((e: unknown) => ({
    parsed,
    image: null,
    facts: null,
    reason: `could not be checked: ${e instanceof Error ? e.message : String(e)}`,
  }));
}

/** Validates and pre-flights every line, in order. */
export async function* checkLines(
  lines: AsyncIterable<ParsedLine> | Iterable<ParsedLine>,
  opts: CheckLinesOptions,
): AsyncGenerator<CheckedLine> {
  const window: Promise<CheckedLine>[] = [];
  const concurrency = Math.max(1, opts.concurrency ?? 8);
  for await (const parsed of lines) {
    window.push(safeCheck(parsed, opts));
    if (window.length >= concurrency) yield await (window.shift() as Promise<CheckedLine>);
  }
  while (window.length > 0) yield await (window.shift() as Promise<CheckedLine>);
}

/**
 * `--check` for the producer: the lines whose image fails the pre-flight get that `reason`, so `enqueueLines`
 * rejects them with it; the others pass unchanged.
 */
export async function* preflightLines(
  lines: AsyncIterable<ParsedLine> | Iterable<ParsedLine>,
  opts: CheckLinesOptions,
): AsyncGenerator<ParsedLine> {
  for await (const checked of checkLines(lines, opts)) {
    yield checked.image !== null && checked.reason !== undefined ? { ...checked.parsed, reason: checked.reason } : checked.parsed;
  }
}
