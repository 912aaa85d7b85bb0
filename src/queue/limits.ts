/**
 * Turns an API budget ("20 per 10 s, sliding window") into BullMQ limiter options.
 *
 * BullMQ's limiter counts job starts in fixed windows (the first start sets a key's expiry). kie.ai's windows are
 * assumed sliding: a fixed-window limiter of 20 per 10 s can let 40 through in 10 s around a window boundary.
 * Allowing one start per `duration / max` cannot put more than `max` starts into any window of `duration`,
 * however it is placed. A guard absorbs jitter between the start in Redis and the arrival at kie.ai (event-loop
 * stalls such as GC pauses, network): 2 % of the window, at least 50 ms (jitter does not shrink with the window) and
 * at most 250 ms. At kie.ai's budgets that is 200 ms of a 10 s window and 50 ms of a 1 s window.
 *
 * For very large budgets (benchmarks, private deployments) one start per millisecond or less would make BullMQ's
 * limiter the bottleneck, so k starts are allowed per fixed window of W = D/m (at least 10 ms): a sliding window of
 * D touches at most m+1 such windows, so k = ⌊max/(m+1)⌋ keeps it within the budget. kie.ai's budgets (one start
 * per 100 ms or more) keep the one-start form, which is the tighter of the two for small budgets.
 */
import type { RateLimit } from '../config/units.js';

export interface LimiterOptions {
  max: number;
  duration: number;
}

/** Shortest fixed window worth its bookkeeping in BullMQ. */
const MIN_WINDOW_MS = 10;

export function guardMs(limit: RateLimit): number {
  return Math.min(250, Math.max(50, limit.durationMs * 0.02));
}

/** The even gap (ms, possibly fractional) between sends that keeps every sliding window within the budget. */
export function sendSpacingMs(limit: RateLimit): number {
  return (limit.durationMs + guardMs(limit)) / limit.max;
}

export function limiterFor(limit: RateLimit): LimiterOptions {
  const spacing = sendSpacingMs(limit);
  const span = limit.durationMs + guardMs(limit);
  const m = Math.floor(span / MIN_WINDOW_MS);
  const k = Math.floor(limit.max / (m + 1));
  if (spacing >= MIN_WINDOW_MS || k < 2) return { max: 1, duration: Math.max(1, Math.ceil(spacing)) };
  return { max: k, duration: Math.ceil(span / m) };
}
