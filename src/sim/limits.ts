/**
 * Sliding-window rate limits, one window per API key and budget (KIE_API.md, "Rate limits": assume sliding).
 * A window holds the arrival times of the calls it let through. A call is let through when fewer than `max`
 * such times lie in (now − duration, now]. A createTask that later fails validation gives its slot back
 * (`release`), so only accepted calls count.
 */
import type { RateLimit } from '../config/units.js';

/** A slot held in a window; `release()` gives it back (a rejected createTask is not counted). */
export interface Slot {
  release(): void;
}

export class SlidingWindow {
  private times: number[] = [];
  /** The most calls this window has held at once, i.e. the most in any interval of its duration. */
  peak = 0;

  constructor(readonly limit: RateLimit) {}

  private prune(now: number): void {
    const cutoff = now - this.limit.durationMs;
    let drop = 0;
    while (drop < this.times.length && (this.times[drop] as number) <= cutoff) drop++;
    if (drop > 0) this.times.splice(0, drop);
  }

  /** Calls counted in the window ending now. */
  count(now: number): number {
    this.prune(now);
    return this.times.length;
  }

  /** Takes a slot at `now`, or returns null when the window is full (nothing is recorded then). */
  acquire(now: number): Slot | null {
    this.prune(now);
    if (this.times.length >= this.limit.max) return null;
    this.times.push(now);
    this.peak = Math.max(this.peak, this.times.length);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        const i = this.times.indexOf(now);
        if (i >= 0) this.times.splice(i, 1);
      },
    };
  }
}

/** One window per key for one budget. */
export class KeyedLimiter {
  private windows = new Map<string, SlidingWindow>();

  constructor(readonly limit: RateLimit) {}

  acquire(key: string, now: number): Slot | null {
    let w = this.windows.get(key);
    if (!w) {
      w = new SlidingWindow(this.limit);
      this.windows.set(key, w);
    }
    return w.acquire(now);
  }

  /** The highest peak of any key's window. */
  peak(): number {
    let p = 0;
    for (const w of this.windows.values()) p = Math.max(p, w.peak);
    return p;
  }

  resetPeaks(): void {
    for (const w of this.windows.values()) w.peak = 0;
  }
}

/** Monotonic milliseconds for windows (immune to wall-clock jumps). */
export function monotonicMs(): number {
  return performance.now();
}
