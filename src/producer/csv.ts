/**
 * CSV input: a header row naming a `url` column (or `image_url` / `image`), optional `model` and `factor`, in any
 * order; every other named column is kept as meta under its header name (meta.ts: a header naming a column that
 * cannot be a meta key, or more than MAX_META_KEYS extra columns, fails the file with the column named). Tokenising is csv-parse's streaming parser; this module feeds it one physical
 * line at a time so that every record keeps its line number, and recovers from broken quoting line by line.
 *
 * Why not hand csv-parse the whole stream: with `skip_records_with_error` it skips a record with a stray quote but
 * then loses its place, and everything after an invalid closing quote or an unclosed quote is swallowed. Here a
 * record with broken quoting rejects its first line only; the parser is replaced and the lines after it are read
 * again. A quoted field may still span lines, up to MAX_LINE_CHARS in all.
 *
 * csv-parse holds back the end of a write (up to 3 characters) until more arrives, so a record comes out while
 * the following line is written; at the end of input a few blank lines flush the last one.
 */
import { Parser, type CsvError } from 'csv-parse';
import { delimiterName, headerColumns, sepLine, sniffDelimiter, type Columns, type Delimiter } from './dialect.js';

export { headerColumns, URL_COLUMNS } from './dialect.js';
import { InputError } from './errors.js';
import type { RawLine } from './lines.js';
import { MAX_META_KEYS, metaKeyProblem, normalizeMetaValue } from './meta.js';
import { MAX_LINE_CHARS, type ParsedLine } from './types.js';

/** Most lines one quoted field may span. */
const MAX_RECORD_LINES = 1000;

/** Why the header's extra columns cannot be meta keys (bad name, repeated, too many), or null. */
function metaColumnsProblem(columns: Columns): string | null {
  if (columns.meta.length > MAX_META_KEYS) {
    return `the CSV header has ${columns.meta.length} extra columns (kept as meta), over the ${MAX_META_KEYS} limit; remove some`;
  }
  const seen = new Set<string>();
  for (const { index, key } of columns.meta) {
    const problem = metaKeyProblem(key);
    if (problem) return `column ${index + 1} of the CSV header: ${problem} (rename the column)`;
    if (seen.has(key)) return `column ${index + 1} of the CSV header: "${key}" appears twice`;
    seen.add(key);
  }
  return null;
}

function quotingReason(err: CsvError): string {
  switch (err.code) {
    case 'INVALID_OPENING_QUOTE':
      return 'broken CSV quoting: a quote inside an unquoted field (quote the whole field and double the quote)';
    case 'CSV_INVALID_CLOSING_QUOTE':
      return 'broken CSV quoting: text follows a closing quote in the same field';
    case 'CSV_QUOTE_NOT_CLOSED':
      return 'broken CSV quoting: a quote opened on this line is never closed';
    default:
      return `broken CSV: ${err.message.replace(/ at line \d+/, '')}`;
  }
}

/** A line that can start a record: csv-parse skips empty lines and lines starting with `#`. */
const isContent = (l: RawLine): boolean => l.text.trim() !== '' && !l.text.startsWith('#');

class CsvReader {
  private parser: Parser | undefined;
  /** Physical line number of the line before the current parser's first line. */
  private base = 0;
  /** Lines given to the current parser. */
  private fed = 0;
  /** Lines given to the current parser since its last complete record (blank ones too). */
  private buffer: RawLine[] = [];
  /** Lines to give to the parser before the next new one (after a restart). */
  private replay: RawLine[] = [];
  /** Set by the parser's callbacks; acted on once its write returns (never from inside the parser). */
  private error: string | null = null;
  private fatal: InputError | null = null;
  private columns: Columns | null = null;
  /** Fields of the header. */
  private width = 0;
  private out: ParsedLine[] = [];
  /** Lines rejected before parsing (too long, not text), held until the records before them are out. */
  private problems: ParsedLine[] = [];

  constructor(private readonly delimiter: Delimiter) {
    this.restart(0);
  }

  push(raw: RawLine): void {
    this.replay.push(raw);
    this.drain();
  }

  /** Completes the last record; a quote still open rejects its line, and the lines after it are read again. */
  end(): void {
    for (;;) {
      this.drain();
      // csv-parse holds back at most 3 characters (a multi-byte trim character); 4 blank lines flush them.
      for (let i = 0; i < 4 && this.replay.length === 0; i++)
        this.write({ line: this.base + this.fed + 1, text: '' });
      if (this.replay.length > 0) continue; // the last record failed: read what followed its first line again
      const open = this.openRecordStart();
      if (!open) break;
      this.fail(open, 'broken CSV quoting: a quote opened on this line is never closed');
    }
    this.parser?.destroy();
  }

  /** What is ready, in line order. */
  take(): ParsedLine[] {
    const held = this.openRecordStart()?.line ?? Infinity;
    const ready = this.problems.filter((p) => p.line < held);
    if (ready.length > 0) this.problems = this.problems.filter((p) => p.line >= held);
    if (this.out.length === 0 && ready.length === 0) return [];
    const all = this.out.concat(ready).sort((a, b) => a.line - b.line);
    this.out = [];
    return all;
  }

  private drain(): void {
    while (this.replay.length > 0) this.write(this.replay.shift() as RawLine);
  }

  private restart(base: number): void {
    this.parser?.destroy();
    const parser: Parser = new Parser({
      delimiter: this.delimiter,
      record_delimiter: '\n',
      comment: '#',
      comment_no_infix: true, // only whole lines: a '#' inside a URL is a fragment
      relax_column_count: true,
      skip_empty_lines: true,
      skip_records_with_error: true,
      trim: true,
      on_record: (record: string[], ctx) => {
        if (parser === this.parser && this.error === null && this.fatal === null)
          this.record(record, ctx.lines);
        return null; // nothing is pushed downstream, so every write is processed synchronously
      },
      on_skip: (err) => {
        if (parser === this.parser && this.error === null)
          this.error = err ? quotingReason(err) : 'broken CSV';
        return undefined;
      },
    });
    parser.on('error', () => undefined); // every record error arrives through on_skip
    this.parser = parser;
    this.base = base;
    this.fed = 0;
    this.buffer = [];
  }

  private write(raw: RawLine): void {
    if (raw.problem !== undefined) {
      // Keep the numbering: the parser sees a blank line, the line itself is rejected here.
      this.write({ line: raw.line, text: '' });
      this.problems.push({ line: raw.line, input: raw.text, reason: raw.problem });
      return;
    }
    this.buffer.push(raw);
    this.fed += 1;
    this.parser?.write(raw.text + '\n');
    if (this.fatal) throw this.fatal;
    const start = this.openRecordStart();
    if (this.error !== null) {
      const reason = this.error;
      this.error = null;
      this.fail(start ?? raw, reason);
    } else if (start && this.buffer.length > 1) {
      // Everything but the line just written belongs to a record whose quoted field is still open.
      const open = this.buffer.slice(0, -1);
      const chars = open.reduce((n, l) => n + l.text.length + 1, 0);
      if (chars > MAX_LINE_CHARS || open.length > MAX_RECORD_LINES) {
        this.fail(
          start,
          `broken CSV quoting: a quote opened on this line is not closed within ${MAX_LINE_CHARS} characters`,
        );
      }
    }
  }

  /** The first line of the record being read (not blank, not a comment), if any. */
  private openRecordStart(): RawLine | undefined {
    return this.buffer.find(isContent);
  }

  /** Rejects `start`, then reads the lines after it again with a new parser. */
  private fail(start: RawLine, reason: string): void {
    if (this.columns === null)
      throw new InputError(`line ${start.line}: cannot read the CSV header: ${reason}`);
    const after = this.buffer.filter((l) => l.line > start.line);
    this.out.push({ line: start.line, input: start.text.trim(), reason });
    this.restart(start.line);
    this.replay.unshift(...after);
  }

  /** Called by the parser for each complete record that ends on its line `endFed`. */
  private record(fields: string[], endFed: number): void {
    const endLine = this.base + endFed;
    const lines = this.buffer.filter((l) => l.line <= endLine);
    const start = lines.find(isContent) ?? { line: endLine, text: '' };
    if (this.columns === null) {
      this.columns = headerColumns(fields);
      if (this.columns === null) {
        const found = fields.map((f) => JSON.stringify(f)).join(', ');
        this.fatal = new InputError(
          `line ${start.line}: the CSV header has no "url" column (found: ${found}, ` +
            `split at ${delimiterName(this.delimiter)})`,
        );
        return;
      }
      const problem = metaColumnsProblem(this.columns);
      if (problem !== null) {
        this.fatal = new InputError(`line ${start.line}: ${problem}`);
        return;
      }
      this.width = fields.length;
    } else if (fields.length > this.width && fields.slice(this.width).some((f) => f !== '')) {
      // Never a URL cut at the delimiter: the whole row is refused.
      const d = delimiterName(this.delimiter);
      this.out.push({
        line: start.line,
        input: start.text.trim(),
        reason:
          `the row has ${fields.length} fields but the header has ${this.width}: a value holds the delimiter ${d}; ` +
          `put the URL in double quotes ("https://…") or use another delimiter`,
      });
    } else {
      const url = fields[this.columns.url] ?? '';
      if (/[\r\n]/.test(url)) {
        // A stray quote closed by another one lines later: reject the first line and read the rest again.
        this.error = 'broken CSV quoting: a quote opened on this line is never closed';
        return; // the buffer still holds the record's lines
      }
      if (!fields.every((f) => f === '')) this.out.push(this.item(fields, start.line, url, this.columns));
    }
    this.buffer = this.buffer.filter((l) => l.line > endLine);
  }

  private item(fields: string[], line: number, url: string, columns: Columns): ParsedLine {
    const item: ParsedLine = { line, input: url };
    const model = fields[columns.model];
    const factor = fields[columns.factor];
    if (model) item.model = model;
    if (factor) item.factor = factor;
    const meta: Record<string, string> = {};
    for (const { index, key } of columns.meta) {
      const value = normalizeMetaValue(fields[index] ?? '');
      if (value !== '') meta[key] = value;
    }
    if (Object.keys(meta).length > 0) item.meta = meta;
    if (url === '') item.reason = `no url in column ${columns.url + 1}`;
    return item;
  }
}

/** What the CSV parser needs to know about the file beyond its lines. */
export interface CsvDialectHint {
  /** The delimiter, when known (`--delimiter`); else a `sep=` line or the header decides (dialect.ts). */
  delimiter?: Delimiter;
  /** Delimiter of a one-column header. @defaultValue `,` */
  fallback?: Delimiter;
}

/**
 * Parses CSV lines into items (or rejections), streaming. The delimiter comes from the hint, an Excel `sep=`
 * first line, or the header (dialect.ts). Throws `InputError` for an unusable header.
 */
export async function* parseCsv(
  lines: AsyncIterable<RawLine> | Iterable<RawLine>,
  hint: CsvDialectHint = {},
): AsyncGenerator<ParsedLine> {
  let reader: CsvReader | null = null;
  let delimiter = hint.delimiter;
  const held: RawLine[] = [];
  for await (const raw of lines) {
    if (reader === null) {
      // Up to the header: a sep= line names the delimiter (and is no record), else the header is sniffed.
      // A header that cannot be read (invalid UTF-8, NUL bytes, too long) fails the file: every row depends on it.
      if (raw.problem !== undefined && raw.text.trim() !== '' && !raw.text.startsWith('#')) {
        throw new InputError(`line ${raw.line}: cannot read the CSV header: ${raw.problem}`);
      }
      if (!isContent(raw)) {
        held.push(raw);
        continue;
      }
      const sep = delimiter === undefined && held.every((l) => !isContent(l)) ? sepLine(raw.text) : null;
      if (sep !== null) {
        delimiter = sep;
        held.push({ line: raw.line, text: '' });
        continue;
      }
      delimiter ??= sniffDelimiter(raw.text, hint.fallback ?? ',') ?? hint.fallback ?? ',';
      reader = new CsvReader(delimiter);
      for (const h of held) reader.push(h);
      held.length = 0;
    }
    reader.push(raw);
    yield* reader.take();
  }
  if (reader === null) {
    // No header came: only lines that could not be read are left to report.
    for (const h of held) if (h.problem !== undefined) yield { line: h.line, input: h.text.trim(), reason: h.problem };
    return;
  }
  reader.end();
  yield* reader.take();
}
