/**
 * Counters and histograms shared by every process through Redis, so `upscale serve` can expose in /metrics what
 * the workers did. Increments are summed in memory and written in one pipeline at most once a second.
 * A series is a hash field `name{label="value",...}` in `<prefix>:counters`.
 */
import type { Redis } from 'ioredis';
import { WriteBehind } from './write-behind.js';

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

/** A lookup key for a series as the caller gave it (no sort, no escaping). */
function givenKey(name: string, labels: Labels): string {
  let given = name;
  for (const k in labels) given += `\0${k}\0${labels[k]}`;
  return given;
}

export class Counters {
  /** Increments not written yet, by series. */
  private readonly pending: WriteBehind<number>;

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    flushMs = 1000,
  ) {
    this.pending = new WriteBehind<number>(redis, flushMs, (p, series, by) => {
      if (Number.isInteger(by)) p.hincrby(key, series, by);
      else p.hincrbyfloat(key, series, by);
    });
  }

  /** Series names by name and labels as given: an image's metrics cost a lookup, not a sort and escape per series. */
  private names = new Map<string, string>();

  /** A histogram's series names by name and labels as given: `_bucket` per bucket then `+Inf`, `_sum`, `_count`. */
  private histograms = new Map<string, { buckets: readonly number[]; bucket: string[]; sum: string; count: string }>();

  inc(name: string, labels: Labels = {}, by = 1): void {
    const given = givenKey(name, labels);
    let series = this.names.get(given);
    if (series === undefined) {
      // Labels are bounded sets (models, states, buckets); the bound only guards against a caller that is not.
      if (this.names.size >= 10_000) this.names.clear();
      series = seriesName(name, labels);
      this.names.set(given, series);
    }
    this.add(series, by);
  }

  /** Prometheus-style cumulative histogram: `_bucket{le}`, `_sum`, `_count`. */
  observe(name: string, value: number, buckets: readonly number[], labels: Labels = {}): void {
    const given = givenKey(name, labels);
    let h = this.histograms.get(given);
    if (h === undefined || h.buckets !== buckets) {
      if (this.histograms.size >= 10_000) this.histograms.clear();
      const bucket = [...buckets, '+Inf' as const].map((le) => seriesName(`${name}_bucket`, { ...labels, le }));
      h = { buckets, bucket, sum: seriesName(`${name}_sum`, labels), count: seriesName(`${name}_count`, labels) };
      this.histograms.set(given, h);
    }
    for (let i = 0; i < buckets.length; i++) if (value <= (buckets[i] as number)) this.add(h.bucket[i] as string, 1);
    this.add(h.bucket[buckets.length] as string, 1);
    this.add(h.sum, value);
    this.add(h.count, 1);
  }

  private add(series: string, by: number): void {
    this.pending.update(series, (sum) => (sum ?? 0) + by);
  }

  /** Writes the increments gathered since the last flush. Rejects when Redis does. */
  flush(): Promise<void> {
    return this.pending.flush();
  }

  /** Every series with its value. */
  async read(): Promise<Map<string, number>> {
    const h = await this.redis.hgetall(this.key);
    return new Map(Object.entries(h).map(([k, v]) => [k, Number(v)]));
  }
}
