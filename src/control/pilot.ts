/**
 * Operator control over a pilot (`upscale approve --batch ID`): releases every `held` image of the batch (record to
 * `waiting`, submit job added) and records the approval, so images added later are not held either. Rejecting a
 * pilot is `upscale cancel --batch ID`, which cancels held images like waiting ones.
 */
import { release } from '../batch/pilot.js';
import { requireBatch } from '../results/export.js';
import type { ResultRecord } from '../results/record.js';
import type { Runtime } from '../runtime.js';

/**
 * Approves a batch's pilot. Throws `UnknownBatchError` for an unknown batch and a `RangeError` for a batch without
 * a pilot. Idempotent: a second approval releases only what is still held.
 * @returns `released`: images moved from held to waiting now; `alreadyApproved`: the pilot was approved before.
 */
export async function approve(rt: Runtime, batchId: string, options: { now?: number } = {}): Promise<{ released: number; alreadyApproved: boolean }> {
  await requireBatch(rt.store, batchId);
  const key = rt.store.keys.batch(batchId);
  const [pilot, approvedAt] = await rt.redis.hmget(key, 'pilot', 'pilotApprovedAt');
  if (pilot === null || pilot === undefined) throw new RangeError(`batch ${batchId} has no pilot (it was not enqueued with --pilot); nothing to approve`);
  // Approval first: images enqueued from now on are not held.
  await rt.redis.hsetnx(key, 'pilotApprovedAt', String(options.now ?? Date.now()));
  let released = 0;
  let chunk: ResultRecord[] = [];
  for await (const r of rt.store.records(batchId)) {
    if (r.state !== 'held') continue;
    chunk.push(r);
    if (chunk.length >= 500) {
      released += await release(rt, batchId, chunk);
      chunk = [];
    }
  }
  if (chunk.length > 0) released += await release(rt, batchId, chunk);
  return { released, alreadyApproved: approvedAt !== null && approvedAt !== undefined };
}
