/** What a scenario hands back, the statistics it uses, and the markdown table `npm run bench` prints. */

/** One figure of ours beside the baseline's, measured in the same run. */
export interface Metric {
  /** e.g. `efficiency (ideal / makespan), polling`. */
  name: string;
  unit: string;
  ours: number | null;
  baseline: number | null;
  /**
   * Which direction is better. The ratio is always "how many times better ours is": ours / baseline when higher
   * is better, baseline / ours when lower is better (∞ when ours is 0 and the baseline is not).
   */
  better: 'higher' | 'lower';
  /** The target on ours, as a predicate and its text (`≥ 0.95`). */
  target?: { text: string; ok: (ours: number) => boolean } | { text: string; onRatio: (ratio: number) => boolean };
  /** Why a figure is n/a, or how to read it. */
  note?: string;
}

export interface MetricResult {
  name: string;
  unit: string;
  ours: number | null;
  baseline: number | null;
  better: 'higher' | 'lower';
  ratio: number | null;
  target: string | null;
  met: boolean | null;
  note: string | null;
}

export interface ScenarioResult {
  id: number;
  title: string;
  /** What was run: sizes, time scale, limits, processes. */
  setup: Record<string, unknown>;
  metrics: MetricResult[];
  /** Everything else measured (breakdowns, raw counts), kept in the JSON. */
  details: Record<string, unknown>;
  wallMs: number;
}

export function ratioOf(m: Pick<Metric, 'ours' | 'baseline' | 'better'>): number | null {
  const { ours, baseline } = m;
  if (ours === null || baseline === null || !Number.isFinite(ours) || !Number.isFinite(baseline)) return null;
  if (m.better === 'higher') return baseline === 0 ? (ours > 0 ? Infinity : null) : ours / baseline;
  return ours === 0 ? (baseline > 0 ? Infinity : 1) : baseline / ours;
}

export function finish(m: Metric): MetricResult {
  const ratio = ratioOf(m);
  let met: boolean | null = null;
  if (m.target && m.ours !== null && Number.isFinite(m.ours)) {
    if ('ok' in m.target) met = m.target.ok(m.ours);
    else met = ratio === null ? null : m.target.onRatio(ratio);
  }
  return {
    name: m.name,
    unit: m.unit,
    ours: m.ours,
    baseline: m.baseline,
    better: m.better,
    ratio,
    target: m.target?.text ?? null,
    met,
    note: m.note ?? null,
  };
}

/** The value at quantile `q` (nearest rank) of `values`; null for none. */
export function quantile(values: readonly number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}

export function mean(values: readonly number[]): number | null {
  return values.length === 0 ? null : values.reduce((a, b) => a + b, 0) / values.length;
}

export const MB = 1024 * 1024;

function fmtNumber(v: number | null): string {
  if (v === null || Number.isNaN(v)) return 'n/a';
  if (!Number.isFinite(v)) return '∞';
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (a >= 10_000) return Math.round(v).toLocaleString('en-US');
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toFixed(3);
}

function fmtRatio(r: number | null): string {
  if (r === null) return 'n/a';
  if (!Number.isFinite(r)) return '∞';
  return `×${r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2)}`;
}

function cell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** The markdown table of every scenario's metrics. */
export function markdownTable(results: readonly ScenarioResult[]): string {
  const lines = [
    '| # | metric | unit | ours | baseline | ratio (>1: ours better) | target | met |',
    '|---|---|---|---:|---:|---:|---|---|',
  ];
  for (const r of results) {
    for (const m of r.metrics) {
      const met = m.met === null ? (m.target ? 'n/a' : '') : m.met ? 'yes' : '**no**';
      lines.push(
        `| ${r.id} | ${cell(m.name)}${m.note ? ` <sub>${cell(m.note)}</sub>` : ''} | ${m.unit} | ${fmtNumber(m.ours)} | ${fmtNumber(m.baseline)} | ${fmtRatio(m.ratio)} | ${cell(m.target ?? '')} | ${met} |`,
      );
    }
  }
  return lines.join('\n');
}

/** Prints progress to stderr (the table goes to stdout). */
export function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Waits until `check` returns a truthy value (every `intervalMs`), or throws after `timeoutMs`. */
export async function waitFor<T>(check: () => Promise<T> | T, what: string, timeoutMs: number, intervalMs = 200): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
    await sleep(intervalMs);
  }
}
