/**
 * Operator controls over the batch scheduler (src/queue/fair-share.ts): `upscale pause|resume --batch ID` and
 * `upscale priority --batch ID LEVEL`, also behind the batches page's pause/resume buttons in write mode.
 *
 * A batch pause closes that batch's gate: its held images stay held, images of it already admitted are held again
 * when a worker starts them (or, already started, at their last look before sending), tasks already created are
 * followed to their end, and the other batches share the whole create budget. It is not a lane pause (`upscale pause` without `--batch`, or a 401/402), which stops submission
 * for every batch; `upscale status` shows both.
 */
import { fairShareOf, lookaheadFor, type BatchGate, type Priority } from '../queue/fair-share.js';
import { requireBatch } from '../results/export.js';
import type { Runtime } from '../runtime.js';

export interface BatchPauseResult {
  batchId: string;
  /** The batch was paused already; the earlier pause (and its time) is kept. */
  alreadyPaused: boolean;
  gate: BatchGate;
  /** Images held (not yet admitted to the submit queue). */
  held: number;
}

/**
 * Pauses one batch. Throws `UnknownBatchError` for an unknown batch.
 * @param options.reason shown in status and on the batches page. @defaultValue `paused by upscale pause --batch`
 */
export async function pauseBatch(rt: Runtime, batchId: string, options: { reason?: string; now?: number } = {}): Promise<BatchPauseResult> {
  await requireBatch(rt.store, batchId);
  const gate: BatchGate = { state: 'paused', reason: options.reason ?? 'paused by upscale pause --batch', at: options.now ?? Date.now() };
  const { before, held } = await fairShareOf(rt).setGate(batchId, gate);
  const alreadyPaused = before?.state === 'paused';
  return { batchId, alreadyPaused, gate: alreadyPaused && before ? before : gate, held };
}

export interface BatchResumeResult {
  batchId: string;
  /** The gate that was open before, null when the batch was not paused. */
  was: BatchGate | null;
  held: number;
}

/** Resumes one batch (its held images take turns again at once). Throws `UnknownBatchError` for an unknown batch. */
export async function resumeBatch(rt: Runtime, batchId: string): Promise<BatchResumeResult> {
  await requireBatch(rt.store, batchId);
  const fair = fairShareOf(rt);
  const { before, held } = await fair.setGate(batchId, null);
  await fair.admit(lookaheadFor(rt.config.createLimit));
  return { batchId, was: before, held };
}

export interface PriorityResult {
  batchId: string;
  before: Priority;
  priority: Priority;
  held: number;
}

/**
 * Changes a batch's priority; it applies from the next admitted image (images already admitted, a quarter second of
 * budget, keep their place). Throws `UnknownBatchError` for an unknown batch.
 */
export async function setBatchPriority(rt: Runtime, batchId: string, priority: Priority): Promise<PriorityResult> {
  await requireBatch(rt.store, batchId);
  const fair = fairShareOf(rt);
  const before = await fair.setPriority(batchId, priority);
  await fair.admit(lookaheadFor(rt.config.createLimit));
  return { batchId, before, priority, held: await fair.heldCount(batchId) };
}
