/**
 * Export of a batch's result records (`upscale export`): JSONL (one record a line, the fields of `RECORD_FIELDS`
 * in that order, `meta` as an object) or CSV (RFC 4180: a header of `RECORD_FIELDS` without `meta`, then one
 * `meta.<key>` column per meta key of the batch, sorted (at most MAX_META_COLUMNS); CRLF line ends, fields with a
 * comma, quote or line break quoted, quotes doubled; UTF-8, with a byte order mark on request (`bom`) so Excel
 * reads it as UTF-8). Records come in input order (by `line`, then job id: line-order.ts, from the batch index) and
 * are streamed page by page from Redis and written with backpressure, so a 100k-image batch never sits in memory.
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { RECORD_FIELDS, type ResultRecord } from './record.js';
import { recordsInLineOrder } from './line-order.js';
import type { ResultStore } from './store.js';

export const EXPORT_FORMATS = ['jsonl', 'csv'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** A batch id that has no summary in the results store (never enqueued, or expired after RESULT_RETENTION). */
export class UnknownBatchError extends Error {
  override readonly name = 'UnknownBatchError';
  constructor(readonly batchId: string) {
    super(`no batch named ${batchId} (run \`upscale status\` to list batches)`);
  }
}

/** Throws `UnknownBatchError` unless the batch is in the results store. */
export async function requireBatch(store: ResultStore, batchId: string): Promise<void> {
  if (!(await store.batchExists(batchId))) throw new UnknownBatchError(batchId);
}

export interface ExportOptions {
  /** @defaultValue `'jsonl'` */
  format?: ExportFormat;
  /** Where the lines go. It is not ended: the caller ends or closes it (standard output must stay open). */
  out: Writable;
  /** Records read per Redis call. @defaultValue `500` */
  pageSize?: number;
  /** The records to write instead of the whole batch (a filtered set, in its order). @defaultValue every record, by line */
  records?: AsyncIterable<ResultRecord>;
  /**
   * Start a CSV export with a UTF-8 byte order mark (EF BB BF): Excel opens a CSV without one in the system's ANSI
   * code page and garbles `ü`. Not the default: scripts reading the CSV (Python's csv, pandas, csv-parse) would
   * see the mark as part of the first column's name unless told. CSV only. @defaultValue `false`
   */
  bom?: boolean;
}

/** Most `meta.<key>` columns in a CSV export (the first ones in sorted order); JSONL always carries all of meta. */
export const MAX_META_COLUMNS = 64;

/** The columns of a CSV export: RECORD_FIELDS without `meta`, then `meta.<key>` per key. */
export function csvColumns(metaKeys: readonly string[] = []): string[] {
  return [
    ...RECORD_FIELDS.filter((f) => f !== 'meta'),
    ...metaKeys.slice(0, MAX_META_COLUMNS).map((k) => `meta.${k}`),
  ];
}

/** Writes are gathered into chunks of about this many characters before `out.write`. */
const CHUNK_CHARS = 64 * 1024;

/**
 * Streams every record of `batchId` to `options.out`, by line, and returns how many were written.
 * Throws `UnknownBatchError` (before writing anything) when the batch does not exist, a RangeError for `bom` with JSONL.
 */
export async function exportBatch(store: ResultStore, batchId: string, options: ExportOptions): Promise<number> {
  const format = options.format ?? 'jsonl';
  if (options.bom && format !== 'csv') throw new RangeError('a byte order mark (bom) is for CSV exports only; JSON Lines has none');
  await requireBatch(store, batchId);
  const { out } = options;
  const metaKeys = format === 'csv' ? (await store.metaKeys(batchId)).slice(0, MAX_META_COLUMNS) : [];
  const line = format === 'csv' ? (r: ResultRecord) => csvLine(r, metaKeys) : jsonLine;
  let buffer = format === 'csv' ? (options.bom ? '\uFEFF' : '') + csvHeader(metaKeys) : '';
  let count = 0;
  for await (const record of options.records ?? recordsInLineOrder(store, batchId, options.pageSize ?? 500)) {
    buffer += line(record);
    count++;
    if (buffer.length >= CHUNK_CHARS) {
      await write(out, buffer);
      buffer = '';
    }
  }
  if (buffer !== '') await write(out, buffer);
  return count;
}

/** Writes and, when the stream's buffer is full, waits for 'drain' (rejects if the stream errors meanwhile). */
async function write(out: Writable, chunk: string): Promise<void> {
  if (out.destroyed) throw new Error('export: the output stream was closed');
  if (!out.write(chunk)) await once(out, 'drain');
}

/** A record's fields in `RECORD_FIELDS` order; a field missing from an older record is `null`. */
function ordered(record: ResultRecord): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const f of RECORD_FIELDS) o[f] = record[f] ?? null;
  return o;
}

export function jsonLine(record: ResultRecord): string {
  return JSON.stringify(ordered(record)) + '\n';
}

export function csvHeader(metaKeys: readonly string[] = []): string {
  return csvColumns(metaKeys).map(csvCell).join(',') + '\r\n';
}

export function csvLine(record: ResultRecord, metaKeys: readonly string[] = []): string {
  const fields = RECORD_FIELDS.filter((f) => f !== 'meta').map((f) => csvCell(record[f]));
  const meta = record.meta ?? {};
  for (const k of metaKeys.slice(0, MAX_META_COLUMNS)) fields.push(csvCell(Object.hasOwn(meta, k) ? meta[k] : null));
  return fields.join(',') + '\r\n';
}

/** Text a spreadsheet would run as a formula (OWASP "CSV injection"): a first `=`, `+`, `-`, `@`, tab or CR. */
const FORMULA_START = /^[=+\-@\t\r]/;
/** A plain number (`-12`, `+3.5`): a spreadsheet reads it as the number it is, never as a formula. */
const PLAIN_NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/**
 * One CSV field: null/undefined empty, arrays joined with a space, quoted when it holds `,` `"` CR or LF. Text that
 * a spreadsheet would run as a formula (a meta value `=HYPERLINK(...)`, `@SUM(A1)`, `+1+1` from an input file) gets a
 * leading `'`, which Excel, LibreOffice and Google Sheets show as text (OWASP's advice for CSV injection); plain
 * numbers stay as they are. JSONL keeps every value verbatim.
 */
export function csvCell(value: unknown): string {
  if (value === null || value === undefined) return '';
  let text: string;
  if (Array.isArray(value)) text = value.map(String).join(' ');
  else if (typeof value === 'string') text = FORMULA_START.test(value) && !PLAIN_NUMBER.test(value) ? `'${value}` : value;
  else if (typeof value === 'number' || typeof value === 'boolean') text = String(value);
  else text = JSON.stringify(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
