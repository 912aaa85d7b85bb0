/**
 * Callbacks that arrive while their job is running (a status check or a createTask in flight) are answered at
 * once and resolved again in the background a few times: when the running check parks the poll job, it is
 * promoted. Without this, a callback landing during a check would wait for the next scheduled check.
 */
import type { Resolution } from './callback-resolve.js';

export interface FollowUpOptions {
  /** How long a callback is retried while its job runs. @defaultValue `10_000` ms */
  windowMs?: number;
  /** Time between two tries. @defaultValue `200` ms */
  intervalMs?: number;
  /** Callbacks followed at once; more are counted `expired` at once. @defaultValue `1000` */
  max?: number;
}

/** Final outcomes of a followed callback: a resolution, or `expired` when its job was still running at the end. */
export type FollowUpOutcome = Exclude<Resolution, 'pending'> | 'expired';

export class FollowUps {
  private readonly windowMs: number;
  private readonly intervalMs: number;
  private readonly max: number;
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly running = new Set<Promise<void>>();
  private closed = false;

  constructor(
    options: FollowUpOptions,
    private readonly done: (key: string, outcome: FollowUpOutcome, error?: unknown) => void,
  ) {
    this.windowMs = options.windowMs ?? 10_000;
    this.intervalMs = options.intervalMs ?? 200;
    this.max = options.max ?? 1000;
  }

  /** Callbacks being followed now. */
  get size(): number {
    return this.timers.size;
  }

  has(key: string): boolean {
    return this.timers.has(key);
  }

  /** Starts trying `attempt` until it resolves to something else than `pending`. False when already followed or full. */
  start(key: string, attempt: () => Promise<Resolution>): boolean {
    if (this.closed || this.timers.has(key)) return false;
    if (this.timers.size >= this.max) {
      this.done(key, 'expired');
      return false;
    }
    const deadline = Date.now() + this.windowMs;
    const tick = () => {
      const run = attempt()
        .then((r) => {
          if (this.closed) return;
          if (r !== 'pending') this.finish(key, r);
          else if (Date.now() >= deadline) this.finish(key, 'expired');
          else this.schedule(key, tick);
        })
        .catch((error: unknown) => {
          if (this.closed) return;
          if (Date.now() >= deadline) this.finish(key, 'expired', error);
          else this.schedule(key, tick);
        })
        .finally(() => this.running.delete(run));
      this.running.add(run);
    };
    this.schedule(key, tick);
    return true;
  }

  private schedule(key: string, tick: () => void): void {
    const timer = setTimeout(tick, this.intervalMs);
    timer.unref();
    this.timers.set(key, timer);
  }

  private finish(key: string, outcome: FollowUpOutcome, error?: unknown): void {
    this.timers.delete(key);
    this.done(key, outcome, error);
  }

  /** Stops every follow-up (their callbacks stay answered; polling is the fallback) and waits for tries under way. */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    await Promise.allSettled([...this.running]);
  }
}
