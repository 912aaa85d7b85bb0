/**
 * When to check a task next. The schedule adapts to each model's observed completion times, kept in Redis and
 * shared by all workers: the next check lands just after the next quantile of the distribution (median, then
 * 75th, 90th, 97th, 99.5th percentile) that the task has not yet outlived; past them all it backs off by half the
 * elapsed time. Until a model has enough samples it follows kie.ai's advice (every 3 s for 30 s, then 8 s, then
 * 20 s after 2 minutes). Every delay is clamped to [POLL_MIN_INTERVAL, POLL_MAX_INTERVAL], raised to what the
 * query budget can serve for the tasks in flight, and never passes the task's deadline.
 *
 * With callbacks on, a verified callback promotes the parked check the moment a task ends, so polling is only the
 * fallback for a lost callback: the first check waits until just past the model's slowest observed quantile
 * (99.5th percentile), and checks are at least POLL_MAX_INTERVAL apart.
 */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { RateLimit } from '../config/units.js';
import type { Keys } from '../queue/names.js';

const QUANTILES = [0.5, 0.75, 0.9, 0.97, 0.995];
/** Durations kept per model. */
const SAMPLES = 200;
/** Fewer samples than this and the schedule falls back to kie.ai's advice. */
const MIN_SAMPLES = 8;
const CACHE_MS = 2000;

export interface ScheduleSettings {
  minIntervalMs: number;
  maxIntervalMs: number;
  queryLimit: RateLimit;
  /** Callbacks are expected (PUBLIC_BASE_URL set): polls only catch lost callbacks. */
  callbacks: boolean;
}

/** kie.ai's advice (KIE_API.md): 2–3 s for the first 30 s, 5–10 s after that, 15–30 s after 2 minutes. */
export function adviceDelay(elapsedMs: number): number {
  if (elapsedMs < 30_000) return 3000;
  if (elapsedMs < 120_000) return 8000;
  return 20_000;
}

/** The pure part: the delay until the next check, given what is known. */
export function nextCheckDelay(args: {
  elapsedMs: number;
  remainingMs: number;
  quantilesMs: readonly number[] | null;
  minMs: number;
  maxMs: number;
}): number {
  const { elapsedMs, remainingMs, quantilesMs, minMs, maxMs } = args;
  let delay: number;
  if (quantilesMs && quantilesMs.length > 0) {
    const next = quantilesMs.find((q) => q > elapsedMs + minMs / 2);
    // Land a little after the quantile, so a task that finishes right on it is seen done.
    delay = next !== undefined ? next * 1.05 - elapsedMs : elapsedMs / 2;
  } else {
    delay = adviceDelay(elapsedMs);
  }
  delay = Math.min(maxMs, Math.max(minMs, delay));
  return Math.max(1, Math.round(Math.min(delay, remainingMs)));
}

/**
 * With callbacks on: wait until just past the slowest observed quantile (a callback will normally have promoted the
 * check long before), then every `intervalMs`; never past the deadline.
 */
export function callbackFallbackDelay(args: { elapsedMs: number; remainingMs: number; quantilesMs: readonly number[] | null; intervalMs: number }): number {
  const top = args.quantilesMs?.at(-1);
  const untilTop = top === undefined ? 0 : top * 1.05 - args.elapsedMs;
  return Math.max(1, Math.round(Math.min(Math.max(args.intervalMs, untilTop), args.remainingMs)));
}

export function quantiles(sortedMs: readonly number[], qs: readonly number[] = QUANTILES): number[] {
  if (sortedMs.length === 0) return [];
  return qs.map((q) => sortedMs[Math.min(sortedMs.length - 1, Math.floor(q * sortedMs.length))] as number);
}

export class PollSchedule {
  private cache = new Map<string, { at: number; qs: number[] | null }>();
  private floor = { at: 0, ms: 0 };

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly pollQueue: Queue,
    private readonly settings: ScheduleSettings,
  ) {}

  /** Remembers how long a task of `model` took (kie's own create → complete time when it reports one). */
  async recordDuration(model: string, ms: number): Promise<void> {
    if (!Number.isFinite(ms) || ms < 0) return;
    const key = this.keys.durations(model);
    await this.redis.multi().lpush(key, Math.round(ms)).ltrim(key, 0, SAMPLES - 1).exec();
  }

  async delayFor(model: string, elapsedMs: number, remainingMs: number): Promise<number> {
    const [qs, floorMs] = await Promise.all([this.quantilesOf(model), this.budgetFloor()]);
    const { minIntervalMs, maxIntervalMs, callbacks } = this.settings;
    if (callbacks) return callbackFallbackDelay({ elapsedMs, remainingMs, quantilesMs: qs, intervalMs: Math.max(maxIntervalMs, floorMs) });
    return nextCheckDelay({
      elapsedMs,
      remainingMs,
      quantilesMs: qs,
      minMs: Math.max(minIntervalMs, floorMs),
      maxMs: Math.max(maxIntervalMs, floorMs),
    });
  }

  async quantilesOf(model: string): Promise<number[] | null> {
    const now = Date.now();
    const hit = this.cache.get(model);
    if (hit && now - hit.at < CACHE_MS) return hit.qs;
    const raw = await this.redis.lrange(this.keys.durations(model), 0, -1);
    const sorted = raw.map(Number).filter(Number.isFinite).sort((a, b) => a - b);
    const qs = sorted.length >= MIN_SAMPLES ? quantiles(sorted) : null;
    this.cache.set(model, { at: now, qs });
    return qs;
  }

  /**
   * The shortest interval the query budget can sustain for every task now in flight: with 10,000 tasks and
   * 10 queries per second, a task cannot be checked more often than every 1,000 s.
   */
  async budgetFloor(): Promise<number> {
    const now = Date.now();
    if (now - this.floor.at < CACHE_MS) return this.floor.ms;
    const counts = await this.pollQueue.getJobCounts('delayed', 'waiting', 'active', 'prioritized');
    const inFlight = Object.values(counts).reduce((a, b) => a + b, 0);
    const perQueryMs = this.settings.queryLimit.durationMs / this.settings.queryLimit.max;
    this.floor = { at: now, ms: inFlight * perQueryMs };
    return this.floor.ms;
  }
}
