/**
 * Counters and histograms shared by every process through Redis, so `upscale serve` can expose in /metrics what
 * the workers did. Increments are summed in memory and written in one pipeline at most once a second.
 * A series is a hash field `name{label="value",...}` in `<prefix>:counters`.
 */
import type { Redis } from 'ioredis';

export type Labels = Record<string, string | number>;

/** Histogram buckets in seconds for task completion times. */
export const DURATION_BUCKETS_S = [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 900, 1800];
/** Buckets for polls per task. */
export const POLL_BUCKETS = [1, 2, 3, 4, 5, 8, 13, 21];

export function seriesName(name: string, labels: Labels = {}): string {
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}="${String(labels[k]).replace(/["\\\n]/g, '_')}"`);
  return parts.length === 0 ? name : `${name}{${parts.join(',')}}`;
}

export class Counters {
  private pending = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly flushMs = 1000,
  ) {}

  /** Series names by name and labels as given: an image's metrics cost a lookup, not a sort and escape per series. */
  private names = new Map<string, string>();

  inc(name: string, labels: Labels = {}, by = 1): void {
    let given = name;
    for (const k in labels) given += `\0${k}\0${labels[k]}`;
    let series = this.names.get(given);
    if (series === undefined) {
      // Labels are bounded sets (models, states, buckets); the bound only guards against a caller that is not.
      if (this.names.size >= 10_000) this.names.clear();
      series = seriesName(name, labels);
      this.names.set(given, series);
    }
    this.pending.set(series, (this.pending.get(series) ?? 0) + by);
    this.timer ??= setTimeout(() => void this.flush().catch(() => undefined), this.flushMs).unref();
  }

  /** Prometheus-style cumulative histogram: `_bucket{le}`, `_sum`, `_count`. */
  observe(name: string, value: number, buckets: readonly number[], labels: Labels = {}): void {
    for (const le of buckets) if (value <= le) this.inc(`${name}_bucket`, { ...labels, le }, 1);
    this.inc(`${name}_bucket`, { ...labels, le: '+Inf' }, 1);
    this.inc(`${name}_sum`, labels, value);
    this.inc(`${name}_count`, labels, 1);
  }

  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    const p = this.redis.pipeline();
    for (const [series, by] of batch) {
      if (Number.isInteger(by)) p.hincrby(this.key, series, by);
      else p.hincrbyfloat(this.key, series, by);
    }
    await p.exec();
  }

  /** Every series with its value. */
  async read(): Promise<Map<string, number>> {
    const h = await this.redis.hgetall(this.key);
    return new Map(Object.entries(h).map(([k, v]) => [k, Number(v)]));
  }
}
