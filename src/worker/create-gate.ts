/**
 * The send gate of createTask: the account's whole create budget (KIE_CREATE_LIMIT), exactly, as a sliding window
 * (src/worker/sliding-gate.ts), shared by every worker process. It is passed right before createTask is sent, after
 * the pre-flight and the upload (whose variable duration would otherwise bunch sends up), and the call's answer
 * is reported back. Because the gate counts a call from its send until one window after its answer, no guard
 * time is needed against network or event-loop jitter, and the first window's burst is used in full.
 */
import type { Runtime } from '../runtime.js';
import { SlidingGate } from './sliding-gate.js';

/** The createTask gate of this runtime's budget and prefix. */
export function createTaskGate(rt: Runtime): SlidingGate {
  return new SlidingGate(rt.redis, rt.store.keys.createGate, rt.config.createLimit, rt.config.requestTimeoutMs);
}
