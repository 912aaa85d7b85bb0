/**
 * The submit lane's half of early callbacks (src/queue/early-callbacks.ts): right after a task's poll job is added,
 * a callback remembered for its submit job promotes that job, so the task is checked at once; and before an
 * ambiguous attempt (sent, no checkpoint: a crash) is sent again, a remembered callback names the task it made.
 */
import type { Job } from 'bullmq';
import { peekEarlyCallback, takeEarlyCallback } from '../queue/early-callbacks.js';
import { pollJobId, submitJobId } from '../queue/identity.js';
import type { StoredPollJobData } from '../queue/job-data.js';
import type { LaneContext } from './context.js';

/** Promotes the poll job of `image` when a callback for its task came before the job existed. True when promoted. */
export async function applyEarlyCallback(ctx: LaneContext, image: { jobId: string; batchId: string; generation: number; taskId: string }): Promise<boolean> {
  const { rt, log } = ctx;
  const early = await takeEarlyCallback(rt.redis, rt.store.keys, submitJobId(image.jobId, image.generation));
  if (!early) return false;
  if (early.taskId !== null && early.taskId !== image.taskId) {
    log.info({ jobId: image.jobId, taskId: image.taskId, callbackTaskId: early.taskId }, 'an early callback named another task; ignored');
    return false;
  }
  const job = (await rt.queues.poll.getJob(pollJobId(image.jobId, image.generation))) as Job<StoredPollJobData> | undefined;
  if (!job || (await job.getState()) !== 'delayed') return false;
  try {
    await job.promote();
  } catch {
    return false; // it left the delayed set meanwhile: it is being checked anyway
  }
  log.info({ jobId: image.jobId, batchId: image.batchId, taskId: image.taskId, earlyByMs: Date.now() - early.at }, 'callback came before the poll job; checking the task now');
  return true;
}

/**
 * The taskId a verified callback named for this submit job (remembered while its job could not take it: the job was
 * still held by a process that died), or null. The memory stays for `applyEarlyCallback` to promote the poll job.
 */
export async function rememberedTaskId(ctx: LaneContext, image: { jobId: string; generation: number }): Promise<string | null> {
  const early = await peekEarlyCallback(ctx.rt.redis, ctx.rt.store.keys, submitJobId(image.jobId, image.generation));
  return early?.taskId ?? null;
}
