/**
 * Prometheus text exposition (format 0.0.4) of the counters the workers keep in Redis (src/metrics/counters.ts)
 * and of the gauges read at scrape time. Series names come as `name{label="value",...}`; each family gets one
 * `# HELP` and one `# TYPE`: `_total` → counter, `_bucket`/`_sum`/`_count` beside a `_bucket` → histogram (buckets
 * ordered by `le`, `+Inf` last), anything else → untyped.
 */

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** HELP text of the families this project writes; other names get a generic one. */
export const HELP: Record<string, string> = {
  upscale_kie_calls_total: 'kie.ai API calls by endpoint and answer code (none = no answer)',
  upscale_slowdowns_total:
    'Global slow-downs after a 429 (rate-limit) or 455 (maintenance), by lane and reason',
  upscale_rate_limit_wait_seconds_total: 'Seconds every worker of a lane was told to wait after 429/455',
  upscale_task_duration_seconds: 'kie.ai task duration from creation to completion, by model',
  upscale_polls_per_task: 'recordInfo calls made per finished task, by model',
  upscale_credits_consumed_total: 'kie.ai credits consumed by finished tasks, by model',
  upscale_images_finished_total: 'Images that reached a terminal state, by state and model',
  upscale_ambiguous_submits_total:
    'createTask calls whose outcome is unknown (kie.ai may hold a task), by cause',
  upscale_resubmits_total: 'Tasks failed server-side and submitted again, by model',
  upscale_callbacks_total: 'kie.ai callbacks received, by outcome',
  upscale_queue_jobs: 'BullMQ jobs per lane and state',
  upscale_lane_paused: '1 when the lane is paused (401/402/433, the submit breaker, or upscale pause)',
  upscale_lane_pause_reason: '1 for the pause reason in force, by lane and code (401, 402, 433, breaker, manual), and whether a probe runs',
  upscale_lane_next_probe_timestamp_seconds: 'When a paused lane next probes on its own (Unix seconds)',
  upscale_lane_probes_total: 'Probes of paused lanes, by lane and result (started, refused, resumed)',
  upscale_breaker_trips_total: 'Times the submit circuit breaker paused submission',
  upscale_lane_slowed_down: '1 while a 429/455 slow-down holds the lane',
  upscale_redis_up: '1 when Redis answered this scrape',
};

export interface Sample {
  /** Metric name, e.g. `upscale_queue_jobs`. */
  name: string;
  labels?: Record<string, string>;
  value: number;
}

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'untyped';

/** Escapes a label value as the text format requires (backslash, double quote, line feed). */
export function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function splitSeries(series: string): { name: string; labels: string } {
  const i = series.indexOf('{');
  return i < 0 ? { name: series, labels: '' } : { name: series.slice(0, i), labels: series.slice(i) };
}

const VALID_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

/** `le` of a bucket series, for ordering (`+Inf` last). */
function leOf(labels: string): number {
  const m = /le="([^"]*)"/.exec(labels);
  if (!m) return Infinity;
  return m[1] === '+Inf' ? Infinity : Number(m[1]);
}

/** Orders a histogram's lines: per label set (without `le`), buckets by `le`, then `_sum`, then `_count`. */
function histogramOrder(base: string, a: string, b: string): number {
  const pa = splitSeries(a);
  const pb = splitSeries(b);
  const strip = (l: string) =>
    l
      .replace(/,?le="[^"]*"/, '')
      .replace(/\{,/, '{')
      .replace(/^\{\}$/, '');
  const ga = strip(pa.labels);
  const gb = strip(pb.labels);
  if (ga !== gb) return ga < gb ? -1 : 1;
  const rank = (n: string) => (n === `${base}_bucket` ? 0 : n === `${base}_sum` ? 1 : 2);
  const ra = rank(pa.name);
  const rb = rank(pb.name);
  if (ra !== rb) return ra - rb;
  return ra === 0 ? leOf(pa.labels) - leOf(pb.labels) : 0;
}

/** Renders the Redis counters hash (series → value). Series with an invalid name are skipped. */
export function renderCounters(series: ReadonlyMap<string, number>): string {
  const names = new Set<string>();
  for (const s of series.keys()) names.add(splitSeries(s).name);
  const histograms = new Set<string>();
  for (const n of names) if (n.endsWith('_bucket')) histograms.add(n.slice(0, -'_bucket'.length));
  const families = new Map<string, { type: MetricType; lines: string[] }>();
  for (const [s, value] of series) {
    const { name } = splitSeries(s);
    if (!VALID_NAME.test(name) || !Number.isFinite(value)) continue;
    const hist = /_(bucket|sum|count)$/.exec(name) ? name.replace(/_(bucket|sum|count)$/, '') : null;
    const family = hist !== null && histograms.has(hist) ? hist : name;
    const type: MetricType = family !== name ? 'histogram' : name.endsWith('_total') ? 'counter' : 'untyped';
    const f = families.get(family) ?? { type, lines: [] };
    f.lines.push(s);
    families.set(family, f);
  }
  let out = '';
  for (const family of [...families.keys()].sort()) {
    const f = families.get(family) as { type: MetricType; lines: string[] };
    const lines =
      f.type === 'histogram' ? f.lines.sort((a, b) => histogramOrder(family, a, b)) : f.lines.sort();
    out += `# HELP ${family} ${HELP[family] ?? `${family} (counted by the workers)`}\n# TYPE ${family} ${f.type}\n`;
    for (const s of lines) out += `${s} ${formatValue(series.get(s) as number)}\n`;
  }
  return out;
}

/** Renders gauges read at scrape time, one family per name, in the order given. */
export function renderGauges(samples: readonly Sample[]): string {
  const families = new Map<string, Sample[]>();
  for (const s of samples) families.set(s.name, [...(families.get(s.name) ?? []), s]);
  let out = '';
  for (const [name, list] of families) {
    out += `# HELP ${name} ${HELP[name] ?? name}\n# TYPE ${name} gauge\n`;
    for (const s of list) {
      const labels = Object.entries(s.labels ?? {})
        .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
        .join(',');
      out += `${name}${labels ? `{${labels}}` : ''} ${formatValue(s.value)}\n`;
    }
  }
  return out;
}
