/**
 * Turns an API budget ("20 per 10 s") into BullMQ limiter options: the budget as BullMQ's fixed windows.
 *
 * BullMQ's limiter counts job *starts* in fixed windows (the first start sets a key's expiry), so around a window
 * boundary it can let up to twice `max` start within one of kie.ai's sliding windows, and a start is not an
 * arrival at kie.ai anyway (pre-flight, uploads and the network come between). The limiter therefore only keeps
 * workers from taking more jobs than the budget can send; what reaches kie.ai is decided by the exact sliding-window
 * gate each call passes right before it is sent (src/worker/sliding-gate.ts), where a boundary burst waits.
 * Fixed windows of the full budget (rather than evenly spaced starts with a guard, as before) let the first
 * window's burst through and cost BullMQ one window key per window, not one per start.
 */
import type { RateLimit } from '../config/units.js';

export interface LimiterOptions {
  max: number;
  duration: number;
}

export function limiterFor(limit: RateLimit): LimiterOptions {
  return { max: Math.max(1, Math.floor(limit.max)), duration: Math.max(1, Math.round(limit.durationMs)) };
}
