/**
 * Splits a byte stream into physical lines with bounded memory: UTF-8 decoding (invalid bytes become U+FFFD),
 * a leading BOM stripped, CRLF or LF line ends. A line over MAX_LINE_CHARS is not kept: only its length and its
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

/** Reads `source` (Buffers or strings) and yields every physical line, blank ones included. */
export async function* readLines(
  source: AsyncIterable<Buffer | Uint8Array | string>,
  onBytes?: (bytes: number) => void,
): AsyncGenerator<RawLine> {
  const decoder = new TextDecoder('utf-8'); // strips a leading BOM from bytes
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

  for await (const chunk of source) {
    onBytes?.(typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.byteLength);
    let text = typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    if (first && text.length > 0) {
      first = false;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // string sources keep their BOM
    }
    yield* feed(text);
  }
  yield* feed(decoder.decode());
  if (length > 0) yield finish();
}
