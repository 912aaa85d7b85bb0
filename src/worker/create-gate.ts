/**
 * The send gate of createTask: the account's whole create budget (KIE_CREATE_LIMIT), exactly, as a sliding window
 * (src/worker/sliding-gate.ts), shared by every worker process. It is passed right before createTask is sent, after
 * the pre-flight and the upload (whose variable duration would otherwise bunch sends up), and the call's answer
 * is reported back: a call counts from its send until one window after its answer, so no window of kie.ai's can
 * hold more than the budget whatever the jitter, and the first window's burst is used in full. The cost is one
 * round trip per call and window (README "Design" compares it with a guard).
 */
import type { Runtime } from '../runtime.js';
import { SlidingGate } from './sliding-gate.js';

/** The createTask gate of this runtime's budget and prefix. */
export function createTaskGate(rt: Runtime): SlidingGate {
  return new SlidingGate(rt.redis, rt.store.keys.createGate, rt.config.createLimit, rt.config.requestTimeoutMs, rt.store.keys.slowdown('submit'));
}
