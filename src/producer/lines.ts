/**
 * Splits a byte stream into physical lines with bounded memory. A line ends at LF, CRLF or a lone CR (old Mac Excel
 * writes CR only; a CRLF split across two chunks is one line end), so line numbers are those an editor shows.
 *
 * The encoding, unless given (`encoding`), is read from the first bytes, the way spreadsheets write text: a byte
 * order mark says UTF-8 (`EF BB BF`), UTF-16LE (`FF FE`, Excel's "Unicode Text") or UTF-16BE (`FE FF`), and is
 * stripped; without one, NUL bytes in every other position of the first four bytes mean UTF-16 without a BOM (LE
 * when the NULs come second, BE when first); anything else is UTF-8. Invalid UTF-8 bytes become U+FFFD and the line
 * is rejected as not text; in a file without a BOM the reason says what to do (German Excel's "CSV" is
 * Windows-1252: re-export as "CSV UTF-8", or pass `--encoding windows-1252`).
 *
 * A given encoding is used as it is (`latin1` is read as Windows-1252, its superset, as the WHATWG Encoding Standard
 * and every browser do); a byte order mark of another encoding fails the file (`InputError`), the one of the given
 * encoding is stripped. A line over MAX_LINE_CHARS is not kept: only its length and its start are (one character
 * more than a rejection shows, so the display marks it as cut), and it comes out with a `problem`. So do lines that
 * are not text (NUL bytes, invalid UTF-8).
 */
import { InputError } from './errors.js';
import { DISPLAY_CHARS, MAX_LINE_CHARS, type InputEncoding } from './types.js';

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

/** What a file without a BOM that is not UTF-8 is, and what to do about it. */
export const NOT_UTF8_HINT =
  'the file is not UTF-8: re-export it as "CSV UTF-8" or pass --encoding windows-1252';

/** The encoding a byte order mark at the start of `first` names, or null without one. */
export function bomEncoding(first: Uint8Array): TextEncodingName | null {
  const [a, b, c] = first;
  if (a === 0xff && b === 0xfe) return 'utf-16le';
  if (a === 0xfe && b === 0xff) return 'utf-16be';
  if (a === 0xef && b === 0xbb && c === 0xbf) return 'utf-8';
  return null;
}

/** The encoding of a text file from its first bytes (at least 4 when the file has them); see the module comment. */
export function detectEncoding(first: Uint8Array): TextEncodingName {
  const bom = bomEncoding(first);
  if (bom !== null) return bom;
  const [a, b, c, d] = first;
  if (first.length >= 4) {
    if (a !== 0 && b === 0 && c !== 0 && d === 0) return 'utf-16le';
    if (a === 0 && b !== 0 && c === 0 && d !== 0) return 'utf-16be';
  }
  return 'utf-8';
}

/** The decoder for `first` (the file's first bytes) under `given`; throws InputError for a BOM of another encoding. */
function chooseDecoder(first: Uint8Array, given: InputEncoding | undefined): { decoder: InstanceType<typeof TextDecoder>; hint: boolean } {
  const bom = bomEncoding(first);
  if (given === undefined) {
    const encoding = detectEncoding(first);
    return { decoder: new TextDecoder(encoding), hint: bom === null && encoding === 'utf-8' };
  }
  const label = given === 'latin1' ? 'windows-1252' : given;
  if (bom !== null && bom !== label) {
    throw new InputError(
      `the file starts with a ${bom.toUpperCase()} byte order mark, but --encoding ${given} was given ` +
        `(leave --encoding out: the mark says how the file is encoded)`,
    );
  }
  return { decoder: new TextDecoder(label), hint: false };
}

/** Options of `readLines`. */
export interface ReadLinesOptions {
  /** Called with the size of each chunk read, in bytes. */
  onBytes?: (bytes: number) => void;
  /** The file's encoding; @defaultValue from its first bytes (see the module comment) */
  encoding?: InputEncoding;
}

/**
 * Reads `source` (Buffers or strings) and yields every physical line, blank ones included. Throws `InputError`
 * when a byte order mark contradicts `options.encoding`.
 */
export async function* readLines(
  source: AsyncIterable<Buffer | Uint8Array | string>,
  options: ReadLinesOptions = {},
): AsyncGenerator<RawLine> {
  const { onBytes, encoding } = options;
  let decoder: InstanceType<typeof TextDecoder> | undefined; // chosen from the first bytes; strips a leading BOM
  let hint = false; // a line of invalid UTF-8 gets NOT_UTF8_HINT
  let line = 0;
  let partial = ''; // the current line, kept up to MAX_LINE_CHARS + 1 characters
  let length = 0; // its full length
  let afterCR = false; // the last text ended with a CR that ended a line: a LF right after it belongs to it
  let first = true;

  const append = (text: string, from: number, to: number): void => {
    if (to <= from) return;
    if (partial.length <= MAX_LINE_CHARS)
      partial += text.slice(from, Math.min(to, from + MAX_LINE_CHARS + 1 - partial.length));
    length += to - from;
  };

  const finish = (): RawLine => {
    const len = length;
    const text = partial;
    partial = '';
    length = 0;
    line += 1;
    if (len > MAX_LINE_CHARS) {
      return {
        line,
        text: text.slice(0, DISPLAY_CHARS + 1),
        problem: `line is ${len} characters long, over the ${MAX_LINE_CHARS} limit`,
      };
    }
    let problem = lineProblem(text);
    if (hint && problem === 'not text: invalid UTF-8') problem = `${problem} (${NOT_UTF8_HINT})`;
    return problem === undefined ? { line, text } : { line, text, problem };
  };

  const LINE_END = /\r\n?|\n/g;
  function* feed(text: string): Generator<RawLine> {
    let start = 0;
    if (afterCR && text.length > 0) {
      afterCR = false;
      if (text.charCodeAt(0) === 10) start = 1;
    }
    LINE_END.lastIndex = start;
    for (let m = LINE_END.exec(text); m !== null; m = LINE_END.exec(text)) {
      append(text, start, m.index);
      yield finish();
      start = m.index + m[0].length;
      if (m[0] === '\r' && start === text.length) afterCR = true;
    }
    append(text, start, text.length);
  }

  const choose = (bytes: Buffer): InstanceType<typeof TextDecoder> => {
    const chosen = chooseDecoder(bytes, encoding);
    hint = chosen.hint;
    return chosen.decoder;
  };

  let pending: Buffer | null = null; // first bytes held until there are enough to tell the encoding
  for await (const chunk of source) {
    onBytes?.(typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.byteLength);
    let bytes = typeof chunk === 'string' ? null : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (bytes !== null && decoder === undefined) {
      pending = pending === null ? bytes : Buffer.concat([pending, bytes]);
      if (pending.length < 4) continue;
      decoder = choose(pending);
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
    decoder = choose(pending);
    yield* feed(decoder.decode(pending, { stream: true }));
  }
  if (decoder !== undefined) yield* feed(decoder.decode());
  if (length > 0) yield finish();
}
