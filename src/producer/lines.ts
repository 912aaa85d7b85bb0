/**
 * Splits a byte stream into physical lines with bounded memory, CRLF or LF line ends. The encoding is read from
 * the first bytes, the way spreadsheets write text: a byte order mark says UTF-8 (`EF BB BF`), UTF-16LE (`FF FE`,
 * Excel's "Unicode Text") or UTF-16BE (`FE FF`), and is stripped; without one, NUL bytes in every other position of
 * the first four bytes mean UTF-16 without a BOM (LE when the NULs come second, BE when first); anything else is
 * UTF-8 (invalid bytes become U+FFFD and the line is rejected as not text). A line over MAX_LINE_CHARS is not kept: only its length and its
 * start are (one character more than a rejection shows, so the display marks it as cut), and it comes out with a
 * `problem`. So do lines that are not text (NUL bytes, invalid UTF-8).
 */
import { DISPLAY_CHARS, MAX_LINE_CHARS } from './types.js';

export interface RawLine {
  /** 1-based physical line number. */
  line: number;
  /** The line without its line break (for a too-long line, its first characters). */
  text: string;
  /** Why the line cannot be used at all. */
  problem?: string;
}

export function lineProblem(text: string): string | undefined {
  if (text.includes('\0')) return 'not text: contains NUL bytes';
  if (text.includes('\uFFFD')) return 'not text: invalid UTF-8';
  return undefined;
}

export type TextEncodingName = 'utf-8' | 'utf-16le' | 'utf-16be';

/** The encoding of a text file from its first bytes (at least 4 when the file has them); see the module comment. */
export function detectEncoding(first: Uint8Array): TextEncodingName {
  const [a, b, c, d] = first;
  if (a === 0xff && b === 0xfe) return 'utf-16le';
  if (a === 0xfe && b === 0xff) return 'utf-16be';
  if (a === 0xef && b === 0xbb && c === 0xbf) return 'utf-8';
  if (first.length >= 4) {
    if (a !== 0 && b === 0 && c !== 0 && d === 0) return 'utf-16le';
    if (a === 0 && b !== 0 && c === 0 && d !== 0) return 'utf-16be';
  }
  return 'utf-8';
}

/** Reads `source` (Buffers or strings) and yields every physical line, blank ones included. */
export async function* readLines(
  source: AsyncIterable<Buffer | Uint8Array | string>,
  onBytes?: (bytes: number) => void,
): AsyncGenerator<RawLine> {
  let decoder: InstanceType<typeof TextDecoder> | undefined; // chosen from the first bytes; strips a leading BOM
  let line = 0;
  let partial = ''; // the current line, kept up to MAX_LINE_CHARS + 1 characters
  let length = 0; // its full length
  let endsWithCR = false;
  let first = true;

  const append = (text: string, from: number, to: number): void => {
    if (to <= from) return;
    if (partial.length <= MAX_LINE_CHARS)
      partial += text.slice(from, Math.min(to, from + MAX_LINE_CHARS + 1 - partial.length));
    length += to - from;
    endsWithCR = text.charCodeAt(to - 1) === 13;
  };

  const finish = (): RawLine => {
    const len = endsWithCR ? length - 1 : length;
    const text = endsWithCR && partial.length === length ? partial.slice(0, -1) : partial;
    partial = '';
    length = 0;
    endsWithCR = false;
    line += 1;
    if (len > MAX_LINE_CHARS) {
      return {
        line,
        text: text.slice(0, DISPLAY_CHARS + 1),
        problem: `line is ${len} characters long, over the ${MAX_LINE_CHARS} limit`,
      };
    }
    const problem = lineProblem(text);
    return problem === undefined ? { line, text } : { line, text, problem };
  };

  function* feed(text: string): Generator<RawLine> {
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      append(text, start, nl);
      yield finish();
      start = nl + 1;
    }
    append(text, start, text.length);
  }

  let pending: Buffer | null = null; // first bytes held until there are enough to tell the encoding
  for await (const chunk of source) {
    onBytes?.(typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.byteLength);
    let bytes = typeof chunk === 'string' ? null : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (bytes !== null && decoder === undefined) {
      pending = pending === null ? bytes : Buffer.concat([pending, bytes]);
      if (pending.length < 4) continue;
      decoder = new TextDecoder(detectEncoding(pending));
      bytes = pending;
      pending = null;
    }
    let text = bytes === null ? (chunk as string) : (decoder as InstanceType<typeof TextDecoder>).decode(bytes, { stream: true });
    if (first && text.length > 0) {
      first = false;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // string sources keep their BOM
    }
    yield* feed(text);
  }
  if (pending !== null) {
    decoder = new TextDecoder(detectEncoding(pending));
    yield* feed(decoder.decode(pending, { stream: true }));
  }
  if (decoder !== undefined) yield* feed(decoder.decode());
  if (length > 0) yield finish();
}
