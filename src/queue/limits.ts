/**
 * Turns an API budget ("20 per 10 s, sliding window") into BullMQ limiter options.
 *
 * BullMQ's limiter counts job starts in fixed windows (the first start sets a key's expiry). kie.ai's windows are
 * assumed sliding: a fixed-window limiter of 20 per 10 s can let 40 through in 10 s around a window boundary.
 * Allowing one start per `duration / max` cannot put more than `max` starts into any window of `duration`,
 * however it is placed. A guard absorbs jitter between the start in Redis and the arrival at kie.ai (event-loop
 * stalls, network): 2 % of the window, at least 25 ms (jitter does not shrink with the window) and at most 250 ms.
 */
import type { RateLimit } from '../config/units.js';

export interface LimiterOptions {
  max: number;
  duration: number;
}

export function limiterFor(limit: RateLimit): LimiterOptions {
  const guardMs = Math.min(250, Math.max(25, limit.durationMs * 0.02));
  return { max: 1, duration: Math.max(1, Math.ceil((limit.durationMs + guardMs) / limit.max)) };
}

/** Starts per second the limiter allows. */
export function limiterRate(limiter: LimiterOptions): number {
  return (limiter.max * 1000) / limiter.duration;
}
