/**
 * Spreadsheet dialects: which character separates the fields of a CSV-like file.
 * - Excel's `sep=X` first line (written by hand or by exporters so Excel opens the file right) names it;
 *   the line is not a record.
 * - Otherwise the header decides: each of `,` `;` tab `|` splits it (quotes respected), and the delimiter under
 *   which the header names a url column with the most fields wins (a German Excel export uses `;`, Excel's
 *   "Unicode Text" and LibreOffice's TSV use tab).
 * - A header of one column (`url` alone) cannot tell: the file's kind decides (tab for .tsv and .txt, else `,`).
 */

/** Header names of the input column, in order of preference (matched case-insensitively). */
export const URL_COLUMNS = ['url', 'image_url', 'image'] as const;

export interface Columns {
  url: number;
  model: number;
  factor: number;
  /** Every other column with a name: its index and meta key (the header name as written, trimmed). */
  meta: { index: number; key: string }[];
}

/** Finds the columns in a header; null without a url column. */
export function headerColumns(fields: readonly string[]): Columns | null {
  const names = fields.map((f) => f.trim().replace(/^\uFEFF/, '').toLowerCase());
  const url = URL_COLUMNS.map((c) => names.indexOf(c)).find((i) => i !== -1);
  if (url === undefined) return null;
  const model = names.indexOf('model');
  const factor = names.indexOf('factor');
  const meta = fields
    .map((f, index) => ({ index, key: f.trim() }))
    .filter(({ index, key }) => key !== '' && index !== url && index !== model && index !== factor);
  return { url, model, factor, meta };
}

export type Delimiter = ',' | ';' | '\t' | '|';
export const DELIMITERS: readonly Delimiter[] = [',', ';', '\t', '|'];

/** Names a delimiter in messages. */
export function delimiterName(d: string): string {
  return d === '\t' ? 'tab' : `"${d}"`;
}

/** The delimiter an Excel `sep=X` line names (quoted or followed by empty fields too), else null. */
export function sepLine(text: string): Delimiter | null {
  const m = /^"?sep=(.)"?([,;\t|]*)$/i.exec(text.trim() === '' ? '' : text.replace(/^\s+|[ \r]+$/g, ''));
  const d = m?.[1];
  return d !== undefined && (DELIMITERS as readonly string[]).includes(d) ? (d as Delimiter) : null;
}

/** Splits one line by `delimiter`, honouring double quotes (`""` inside a quoted field is a quote). */
export function splitFields(text: string, delimiter: string): string[] {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"' && field.trim() === '') {
      quoted = true;
      field = '';
    } else if (c === delimiter) {
      fields.push(field.trim());
      field = '';
    } else field += c;
  }
  fields.push(field.trim());
  return fields;
}

/**
 * The delimiter under which `header` names a url column with the most fields; `fallback` when every delimiter
 * gives one field (a one-column header); null when no delimiter finds a url column.
 */
export function sniffDelimiter(header: string, fallback: Delimiter): Delimiter | null {
  let best: { d: Delimiter; n: number } | null = null;
  for (const d of DELIMITERS) {
    const fields = splitFields(header, d);
    if (headerColumns(fields) === null) continue;
    if (best === null || fields.length > best.n) best = { d, n: fields.length };
  }
  if (best === null) return null;
  return best.n === 1 ? fallback : best.d;
}
