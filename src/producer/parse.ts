/**
 * Input files: txt (a URL or path a line), csv (see csv.ts), jsonl (an object a line: `url` (or `image_url`,
 * `image`), optional `model` and `factor`; every other field, and the entries of a `meta` object, become meta). In every format blank
 * lines and lines starting with `#` are ignored (a JSON value or a URL never starts with `#`). Parsing is
 * pure and streaming: it yields one `ParsedLine` per image line (or per unreadable line) and keeps nothing else.
 * The format comes from the option, else the extension, else the first meaningful line.
 */
import { extname } from 'node:path';
import { parseCsv, type CsvDialectHint } from './csv.js';
import { sepLine, sniffDelimiter, type Delimiter } from './dialect.js';
import { InputError } from './errors.js';
import { readLines, type RawLine } from './lines.js';
import { hasMeta, metaFromValues } from './meta.js';
import { openSource, type InputSource, type SourceInfo } from './source.js';
import type { InputEncoding, InputFormat, ParsedLine } from './types.js';

/** Fields of a JSON line naming the input, in order of preference. */
export const JSON_INPUT_FIELDS = ['url', 'image_url', 'image'] as const;
/** How many lines sniffing looks at for the first meaningful one before it settles on txt. */
const SNIFF_LINES = 1000;

const EXTENSIONS: Readonly<Record<string, InputFormat>> = {
  '.txt': 'txt',
  '.list': 'txt',
  '.csv': 'csv',
  '.tsv': 'csv',
  '.tab': 'csv',
  '.jsonl': 'jsonl',
  '.ndjson': 'jsonl',
};

/** The format a file name implies, or undefined (then the content decides). */
export function formatFromPath(path: string): InputFormat | undefined {
  return EXTENSIONS[extname(path).toLowerCase()];
}

/** Extensions whose one-column CSV header means tab-separated (Excel's "Unicode Text" is a .txt). */
const TAB_EXTENSIONS = new Set(['.tsv', '.tab', '.txt']);

/** The delimiter a one-column header implies for a file named `path`. */
function fallbackDelimiter(path: string | undefined): Delimiter {
  return path !== undefined && TAB_EXTENSIONS.has(extname(path).toLowerCase()) ? '\t' : ',';
}

/**
 * Guesses the format from the first meaningful line: `{` → jsonl; an Excel `sep=` line, or a header naming a url
 * column split at `,` `;` tab or `|` → csv; else txt.
 */
export function sniffFormat(firstLine: string): InputFormat {
  const text = firstLine.trim();
  if (text.startsWith('{')) return 'jsonl';
  if (sepLine(firstLine) !== null) return 'csv';
  return sniffDelimiter(firstLine, ',') !== null ? 'csv' : 'txt';
}

export async function* parseTxt(
  lines: AsyncIterable<RawLine> | Iterable<RawLine>,
): AsyncGenerator<ParsedLine> {
  for await (const raw of lines) {
    const input = raw.text.trim();
    if (raw.problem !== undefined) yield { line: raw.line, input, reason: raw.problem };
    else if (input !== '' && !input.startsWith('#')) yield { line: raw.line, input };
  }
}

/** One JSON line to an item, or the reason it is not one. */
export function parseJsonLine(line: number, text: string): ParsedLine {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { line, input: text, reason: `invalid JSON: ${(e as Error).message}` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    const kind = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
    return { line, input: text, reason: `not a JSON object (got ${kind})` };
  }
  const obj = value as Record<string, unknown>;
  const key = JSON_INPUT_FIELDS.find((k) => obj[k] !== undefined && obj[k] !== null);
  if (key === undefined) return { line, input: text, reason: `no "url" (or "image_url", "image") field` };
  const input = obj[key];
  if (typeof input !== 'string') return { line, input: text, reason: `"${key}" is not a string` };
  const item: ParsedLine = { line, input: input.trim() };
  const { model, factor, meta: nested } = obj;
  if (model !== undefined && model !== null) {
    if (typeof model !== 'string') return { line, input: text, reason: `"model" is not a string` };
    item.model = model;
  }
  if (factor !== undefined && factor !== null) {
    if (typeof factor !== 'string' && typeof factor !== 'number') {
      return { line, input: text, reason: `"factor" is not a number or string` };
    }
    item.factor = factor;
  }
  // Every other field is meta; so are the entries of a "meta" object.
  const extra = Object.entries(obj).filter(([k]) => k !== key && k !== 'model' && k !== 'factor' && k !== 'meta');
  if (nested !== undefined && nested !== null) {
    if (typeof nested !== 'object' || Array.isArray(nested)) return { line, input: text, reason: `"meta" is not an object` };
    for (const entry of Object.entries(nested as Record<string, unknown>)) {
      if (Object.hasOwn(obj, entry[0]) && entry[0] !== 'meta')
        return { line, input: text, reason: `"${entry[0]}" is given both as a field and inside "meta"` };
      extra.push(entry);
    }
  }
  const built = metaFromValues(extra);
  if (!built.ok) return { line, input: text, reason: built.reason };
  if (hasMeta(built.meta)) item.meta = built.meta;
  return item;
}

export async function* parseJsonl(
  lines: AsyncIterable<RawLine> | Iterable<RawLine>,
): AsyncGenerator<ParsedLine> {
  for await (const raw of lines) {
    const text = raw.text.trim();
    if (raw.problem !== undefined) yield { line: raw.line, input: text, reason: raw.problem };
    else if (text !== '' && !text.startsWith('#')) yield parseJsonLine(raw.line, text);
  }
}

const PARSERS: Record<InputFormat, (lines: AsyncIterable<RawLine>, hint: CsvDialectHint) => AsyncGenerator<ParsedLine>> = {
  txt: parseTxt,
  csv: parseCsv,
  jsonl: parseJsonl,
};

/** Reads ahead to the first meaningful line, decides the format, and replays what it read. */
async function sniffed(
  lines: AsyncIterator<RawLine>,
): Promise<{ format: InputFormat; lines: AsyncIterable<RawLine> }> {
  const seen: RawLine[] = [];
  let format: InputFormat = 'txt';
  let done = false;
  while (seen.length < SNIFF_LINES) {
    const next = await lines.next();
    if (next.done) {
      done = true;
      break;
    }
    seen.push(next.value);
    const text = next.value.text.trim();
    // A line of text with a bad byte (invalid UTF-8) still shows its shape: a header with "Größe" in the wrong
    // encoding is still a CSV header, and the CSV reader then reports it.
    const readable = next.value.problem === undefined || next.value.problem.startsWith('not text: invalid');
    if (readable && text !== '' && !text.startsWith('#')) {
      format = sniffFormat(next.value.text);
      break;
    }
  }
  async function* replay(): AsyncGenerator<RawLine> {
    yield* seen;
    if (done) return;
    for (let n = await lines.next(); !n.done; n = await lines.next()) yield n.value;
  }
  return { format, lines: replay() };
}

/** Options of `parseInput` beyond the format: the file's encoding, and hooks for progress. */
export interface ParseHooks {
  /** The file's encoding (`upscale enqueue --encoding`). @defaultValue from its first bytes (lines.ts) */
  encoding?: InputEncoding;
  /** Called once the source is open, with what is known about it. */
  onOpen?: (info: SourceInfo) => void;
  /** Called with the number of bytes of each chunk read. */
  onBytes?: (bytes: number) => void;
}

/**
 * Parses an input file (a path, `-` for standard input, or a readable stream) line by line, streaming.
 * Throws `InputError` (naming the file) when it cannot be opened, or when a CSV file has no usable header.
 */
export async function* parseInput(
  source: InputSource,
  format?: InputFormat,
  hooks: ParseHooks = {},
): AsyncGenerator<ParsedLine> {
  const opened = await openSource(source);
  hooks.onOpen?.(opened.info);
  const raw = readLines(opened.chunks, {
    ...(hooks.onBytes ? { onBytes: hooks.onBytes } : {}),
    ...(hooks.encoding ? { encoding: hooks.encoding } : {}),
  });
  const path = opened.info.path;
  const byPath = path ? formatFromPath(path) : undefined;
  // A .txt may be a spreadsheet's text export (Excel's "Unicode Text": tab-separated with a header): sniffed too.
  const chosen = format ?? (byPath === 'txt' ? undefined : byPath);
  const hint: CsvDialectHint = { fallback: fallbackDelimiter(path) };
  try {
    const { format: fmt, lines } = chosen
      ? { format: chosen, lines: raw }
      : await sniffed(raw[Symbol.asyncIterator]());
    yield* PARSERS[fmt](lines, hint);
  } catch (e) {
    if (e instanceof InputError) throw new InputError(`${opened.info.name}: ${e.message}`);
    throw e;
  }
}
