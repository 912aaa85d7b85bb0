/**
 * A batch's input policy, kept in its summary hash beside the credit budget so every worker sees it:
 * `allowAnimated` (`upscale enqueue --allow-animated`) lets animated images through the pre-flight for the whole
 * batch, images enqueued before it included. It is never switched off again by a later enqueue without the flag.
 */
import type { Runtime } from '../runtime.js';

/** Lets the batch's animated images through the pre-flight. */
export async function allowAnimated(rt: Runtime, batchId: string): Promise<void> {
  const key = rt.store.keys.batch(batchId);
  await rt.redis.multi().hset(key, 'allowAnimated', '1').pexpire(key, rt.store.retentionMs).exec();
}

/** True when the batch lets animated images through. */
export async function allowsAnimated(rt: Runtime, batchId: string): Promise<boolean> {
  return (await rt.redis.hget(rt.store.keys.batch(batchId), 'allowAnimated')) === '1';
}
