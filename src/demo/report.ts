/**
 * The demo's results table (input, model × factor, state, output size, reason) and its verdict: every image must
 * end as its sample says (succeeded with a downloaded file, or failed with the expected code and reason).
 */
import { stat } from 'node:fs/promises';
import sharp from 'sharp';
import type { ResultRecord } from '../results/record.js';
import type { DemoItem } from './samples.js';

export interface Row {
  item: DemoItem;
  record: ResultRecord | null;
  /** Size of the downloaded output, when there is one. */
  output: { width: number; height: number; bytes: number } | null;
  /** Why this image did not end as expected; null when it did. */
  surprise: string | null;
}

function modelLabel(item: DemoItem): string {
  return item.model.startsWith('topaz') ? `topaz ×${item.factor ?? '2'}` : 'recraft';
}

function judgeRow(item: DemoItem, record: ResultRecord | null, output: Row['output']): string | null {
  if (!record) return 'no result record';
  const want = item.expect;
  if (want.state === 'succeeded') {
    if (record.state !== 'succeeded') return `expected succeeded, got ${record.state}`;
    if (!record.outputPath || !output) return `not downloaded${record.failMsg ? `: ${record.failMsg}` : ''}`;
    return null;
  }
  if (record.state !== 'failed') return `expected failed (${want.failCode}), got ${record.state}`;
  if (record.failCode !== want.failCode) return `expected failCode ${want.failCode}, got ${record.failCode}`;
  if (!want.reason.test(record.failMsg ?? '')) return `unexpected reason: ${record.failMsg}`;
  return null;
}

export async function buildRows(items: readonly DemoItem[], records: ReadonlyMap<string, ResultRecord>): Promise<Row[]> {
  return Promise.all(
    items.map(async (item) => {
      const record = records.get(item.input) ?? null;
      let output: Row['output'] = null;
      if (record?.outputPath) {
        const [m, st] = await Promise.all([sharp(record.outputPath).metadata().catch(() => null), stat(record.outputPath).catch(() => null)]);
        if (m?.width && m.height && st) output = { width: m.width, height: m.height, bytes: st.size };
      }
      return { item, record, output, surprise: judgeRow(item, record, output) };
    }),
  );
}

function kb(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MB` : `${Math.max(1, Math.round(bytes / 1024))} KB`;
}

/** The table as text, fitted to `width` columns (the reason column is cut). */
export function renderTable(rows: readonly Row[], width = 120): string {
  const head = ['input', 'model', 'state', 'output', 'reason'];
  const body = rows.map((r) => [
    r.item.label,
    modelLabel(r.item),
    (r.record?.state ?? 'missing') + (r.surprise ? ' !' : ''),
    r.output ? `${r.output.width}×${r.output.height} ${kb(r.output.bytes)}` : '-',
    r.surprise ?? r.record?.failMsg ?? '',
  ]);
  const widths = [0, 1, 2, 3].map((i) => Math.max(head[i]?.length ?? 0, ...body.map((b) => b[i]?.length ?? 0)));
  const fixed = widths.reduce((a, b) => a + b + 2, 0);
  const reasonWidth = Math.max(20, width - fixed);
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i < 4 ? c.padEnd(widths[i] ?? 0) : c.length > reasonWidth ? `${c.slice(0, reasonWidth - 1)}…` : c))
      .join('  ')
      .trimEnd();
  const rule = '-'.repeat(Math.min(width, fixed + reasonWidth));
  return [line(head), rule, ...body.map(line)].join('\n') + '\n';
}
