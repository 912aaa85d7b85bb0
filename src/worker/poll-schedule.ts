/**
 * When to check a task next: budget-aware polling. recordInfo calls are free but rate-limited, so the schedule
 * minimises completion lag within the polling share of the query budget (POLL_BUDGET_SHARE of KIE_QUERY_LIMIT),
 * not the number of calls.
 *
 * Each model's observed completion times (the latest 200, in Redis, shared by all workers) give an empirical
 * distribution F. A task last checked at age `a` and still running is checked again at the age where the chance
 * that it finished since, (F(a') − F(a)) / (1 − F(a)), reaches the global pressure p (src/worker/poll-budget.ts).
 * So the checks go to the tasks most likely to have finished since their last check: a young task of a slow model
 * waits, a task around its model's median is checked often. Whatever the distribution, each check finds the task
 * done with chance p, so a task costs 1/p checks on average; the pressure is steered so that the due checks keep the budget busy without queueing,
 * which with few tasks in flight means a check every POLL_MIN_INTERVAL around the likely end.
 *
 * Bounds: every delay lies in [POLL_MIN_INTERVAL, POLL_MAX_INTERVAL] and never passes the task's deadline. When the
 * tasks in flight are so many that even POLL_MAX_INTERVAL would overrun the share (10,000 tasks at 8 per second),
 * every delay is raised to `tasks × (1 / share rate)`: plain round-robin spacing, computed from the poll queue's
 * counts (no scan). A task that outlived every sample is checked at −ln(1 − p) × its age (an exponential tail with a
 * mean of its age: half its age at p = 0.39, the minimum interval once the budget is idle). Until a model has 8 samples the
 * schedule follows kie.ai's advice (at the default intervals: every 3 s for 30 s, then 8 s, then 20 s after 2 minutes).
 *
 * With callbacks on, a verified callback promotes the parked check the moment a task ends, so polling is only the
 * fallback for a lost callback: the first check waits until just past the model's slowest observed quantile
 * (99.5th percentile), and checks are at least POLL_MAX_INTERVAL apart.
 */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { RateLimit } from '../config/units.js';
import type { Keys } from '../queue/names.js';
import type { PollBudget } from './poll-budget.js';
import { WriteBehind } from '../metrics/write-behind.js';

const QUANTILES = [0.5, 0.75, 0.9, 0.97, 0.995];
/** Durations kept per model. */
const SAMPLES = 200;
/** Fewer samples than this and the schedule falls back to kie.ai's advice. */
const MIN_SAMPLES = 8;
const CACHE_MS = 2000;
/** Recorded durations are written at most this long after they are recorded. */
const FLUSH_MS = 1000;
/** The pressure when no PollBudget steers it (a fixed middle value). */
const PRESSURE_WITHOUT_BUDGET = 0.3;

export interface ScheduleSettings {
  minIntervalMs: number;
  maxIntervalMs: number;
  queryLimit: RateLimit;
  /** Callbacks are expected (PUBLIC_BASE_URL set): polls only catch lost callbacks. */
  callbacks: boolean;
  /** The pressure and the polling share; without it the schedule spreads the whole query budget evenly. */
  budget?: PollBudget;
}

/**
 * The empirical CDF of sorted samples at `x`: piecewise linear through (0, 0) and (sorted[k], (k + 1) / (n + 1)).
 * At or past the last sample it is n / (n + 1).
 */
export function cdfAt(sortedMs: readonly number[], x: number): number {
  const n = sortedMs.length;
  if (n === 0 || x <= 0) return 0;
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((sortedMs[mid] as number) <= x) lo = mid + 1;
    else hi = mid;
  }
  // lo = number of samples ≤ x
  if (lo >= n) return n / (n + 1);
  const x0 = lo === 0 ? 0 : (sortedMs[lo - 1] as number);
  const x1 = sortedMs[lo] as number;
  const u0 = lo / (n + 1);
  return x1 > x0 ? u0 + ((x - x0) / (x1 - x0)) / (n + 1) : u0;
}

/** The inverse of `cdfAt`: the age (ms) at which the CDF reaches `u` (u in [0, n / (n + 1)]). */
export function ageAt(sortedMs: readonly number[], u: number): number {
  const n = sortedMs.length;
  if (n === 0 || u <= 0) return 0;
  const pos = u * (n + 1); // position on the 1-based plotting grid
  const k = Math.min(n, Math.floor(pos));
  const x0 = k === 0 ? 0 : (sortedMs[k - 1] as number);
  if (k >= n) return sortedMs[n - 1] as number;
  const x1 = sortedMs[k] as number;
  return x0 + (x1 - x0) * (pos - k);
}

/**
 * The pure part of budget-aware polling: the delay (ms) until the next check of a task `elapsedMs` old that was just
 * seen running, given its model's sorted completion times and the pressure `p`.
 */
export function budgetedDelay(args: {
  elapsedMs: number;
  remainingMs: number;
  sortedMs: readonly number[];
  pressure: number;
  minMs: number;
  maxMs: number;
  /** Round-robin spacing forced by too many tasks in flight, or 0. */
  floorMs: number;
}): number {
  const { elapsedMs, remainingMs, sortedMs, pressure, minMs, maxMs, floorMs } = args;
  const n = sortedMs.length;
  let delay: number;
  if (n < MIN_SAMPLES) {
    delay = adviceDelay(elapsedMs, minMs, maxMs);
  } else {
    const top = n / (n + 1);
    const f = cdfAt(sortedMs, elapsedMs);
    if (f >= top) {
      // Outlived every sample: nothing observed says when it ends, so its remaining time is taken as exponential with
      // a mean of its age, and it is checked when the chance it ended since reaches the pressure, like every other
      // task: −ln(1 − p) × age. With the budget idle (the pressure at its floor, the end of a run) that is the
      // minimum interval; it was half its age whatever the pressure, so the run's slowest tasks, the last to end,
      // waited up to POLL_MAX_INTERVAL each while the budget sat unused (the polling-only makespan's tail).
      delay = -elapsedMs * Math.log(1 - pressure);
    } else {
      const u = f + pressure * (1 - f);
      // Past the last sample's plotting position: land just after the slowest sample.
      delay = (u >= top ? (sortedMs[n - 1] as number) * 1.02 : ageAt(sortedMs, u)) - elapsedMs;
    }
  }
  delay = Math.max(floorMs, Math.min(maxMs, Math.max(minMs, delay)));
  return Math.max(1, Math.round(Math.min(delay, remainingMs)));
}

/**
 * kie.ai's advice (KIE_API.md): 2–3 s for the first 30 s, 5–10 s after that, 15–30 s after 2 minutes; expressed in
 * POLL_MIN_INTERVAL / POLL_MAX_INTERVAL so that it scales with them (at the defaults, 2 s and 30 s: exactly 3 s until
 * 30 s, 8 s until 120 s, then 20 s).
 */
export function adviceDelay(elapsedMs: number, minMs = 2000, maxMs = 30_000): number {
  if (elapsedMs < maxMs) return minMs * 1.5;
  if (elapsedMs < maxMs * 4) return minMs * 4;
  return (maxMs * 2) / 3;
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
  private cache = new Map<string, { at: number; sorted: number[]; qs: number[] | null }>();
  private inFlight = { at: 0, n: 0 };

  /** Durations not written yet, by model (ms), oldest first. */
  private readonly pending: WriteBehind<number[]>;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly pollQueue: Queue,
    private readonly settings: ScheduleSettings,
  ) {
    this.pending = new WriteBehind<number[]>(redis, FLUSH_MS, (p, model, values) => {
      const key = keys.durations(model);
      // The newest at the head, as one LPUSH per value would leave them; the list keeps the latest SAMPLES.
      p.lpush(key, ...values.slice(-SAMPLES)).ltrim(key, 0, SAMPLES - 1);
    });
  }

  /**
   * Remembers how long a task of `model` took (kie's own create → complete time when it reports one), ms. Written
   * to Redis with the others of the same second in one pipeline (`flush`): the schedule reads the samples at most
   * every 2 s anyway, and one write per image was a round trip per image. A process killed outright loses at most
   * that second's samples, which only steer the schedule.
   */
  recordDuration(model: string, ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    this.pending.update(model, (values = []) => {
      values.push(Math.round(ms));
      return values;
    });
  }

  /** Writes the durations recorded since the last flush (the worker calls it when it stops). Rejects when Redis does. */
  flush(): Promise<void> {
    return this.pending.flush();
  }

  /** Delay (ms) until the next check of a task of `model`, `elapsedMs` after its submission, `remainingMs` before its deadline. */
  async delayFor(model: string, elapsedMs: number, remainingMs: number): Promise<number> {
    const { minIntervalMs, maxIntervalMs, callbacks, budget } = this.settings;
    const [samples, n, pressure] = await Promise.all([this.samplesOf(model), this.tasksInFlight(), budget ? budget.pressure() : Promise.resolve(PRESSURE_WITHOUT_BUDGET)]);
    const perQueryMs = budget ? budget.perQueryMs : this.settings.queryLimit.durationMs / this.settings.queryLimit.max;
    const roundRobinMs = n * perQueryMs;
    if (callbacks) return callbackFallbackDelay({ elapsedMs, remainingMs, quantilesMs: samples.qs, intervalMs: Math.max(maxIntervalMs, roundRobinMs) });
    return budgetedDelay({
      elapsedMs,
      remainingMs,
      sortedMs: samples.sorted,
      pressure,
      minMs: minIntervalMs,
      maxMs: maxIntervalMs,
      floorMs: roundRobinMs > maxIntervalMs ? roundRobinMs : 0,
    });
  }

  /**
   * Runs one status check (`call`, a recordInfo) within polling's share of the query budget: through the exact
   * sliding-window gate when a budget is set, else directly.
   */
  async check<T>(call: () => Promise<T>): Promise<T> {
    return this.settings.budget ? this.settings.budget.gate.through(call) : call();
  }

  /** The model's quantiles (median, 75th, 90th, 97th, 99.5th percentile), or null before 8 samples. */
  async quantilesOf(model: string): Promise<number[] | null> {
    return (await this.samplesOf(model)).qs;
  }

  private async samplesOf(model: string): Promise<{ sorted: number[]; qs: number[] | null }> {
    const now = Date.now();
    const hit = this.cache.get(model);
    if (hit && now - hit.at < CACHE_MS) return hit;
    const raw = await this.redis.lrange(this.keys.durations(model), 0, -1);
    const sorted = raw.map(Number).filter(Number.isFinite).sort((a, b) => a - b);
    const entry = { at: now, sorted: sorted.length >= MIN_SAMPLES ? sorted : [], qs: sorted.length >= MIN_SAMPLES ? quantiles(sorted) : null };
    this.cache.set(model, entry);
    return entry;
  }

  /** Poll jobs not finished (delayed, waiting, active, prioritized): O(1) counts, cached for 2 s. */
  async tasksInFlight(): Promise<number> {
    const now = Date.now();
    if (now - this.inFlight.at < CACHE_MS) return this.inFlight.n;
    const counts = await this.pollQueue.getJobCounts('delayed', 'waiting', 'active', 'prioritized');
    this.inFlight = { at: now, n: Object.values(counts).reduce((a, b) => a + b, 0) };
    return this.inFlight.n;
  }
}
