/**
 * What the submit lane does when its circuit breaker trips (src/queue/submit-breaker.ts): submission pauses with
 * "N images in a row failed with <code> <msg>" and a self-lifting probe (lane-probe.ts), and every image of the run
 * goes back to `waiting`. The image in hand goes back with its job; the others (already recorded `failed`, or
 * parked for a retry) get a new generation with a fresh submit job held for the batch scheduler (with the image's
 * meta), exactly as `upscale retry` would, so nothing of the run stays `failed` because of a refusal that was about
 * the account or the request shape, not the image.
 */
import type { HeldJob } from '../queue/fair-share.js';
import { submitJobId } from '../queue/identity.js';
import type { SubmitJobData } from '../queue/job-data.js';
import type { BreakerImage } from '../queue/submit-breaker.js';
import type { RecordState } from '../results/record.js';
import type { LaneContext } from './context.js';
import { pauseWithProbe } from './lane-probe.js';

/** States an image of the run can be in: failed by its outcome, or still submitting (parked for a retry). */
const SEND_BACK_FROM: readonly RecordState[] = ['failed', 'submitting', 'waiting'];

/** Pauses submission for a tripped breaker. */
export async function pauseForBreaker(ctx: LaneContext, run: number, signature: string): Promise<void> {
  const message = `${run} images in a row failed with ${signature}. Submission is paused; it probes with one image after PROBE_COOLDOWN, or run \`upscale resume\`.`;
  const reason = await pauseWithProbe(ctx, 'submit', { code: 'breaker', message, source: 'submit', kind: 'image', signature });
  ctx.counters.inc('upscale_breaker_trips_total', {});
  ctx.log.error({ lane: 'submit', code: 'breaker', signature, run, nextProbeAt: reason.probe ? new Date(reason.probe.at).toISOString() : null }, `submission paused: ${message}`);
}

/**
 * Sends the other images of a tripped run back to waiting with a new generation (the image in hand, `current`, is
 * left to the caller). An image that moved on meanwhile (another generation, succeeded, cancelled) is left alone.
 * @returns how many were sent back.
 */
export async function sendBackImages(ctx: LaneContext, images: readonly BreakerImage[], current: Pick<BreakerImage, 'batchId' | 'jobId'>): Promise<number> {
  const { store } = ctx.rt;
  let sent = 0;
  const byBatch = new Map<string, HeldJob<SubmitJobData>[]>();
  for (const img of images) {
    if (img.batchId === current.batchId && img.jobId === current.jobId) continue;
    const record = await store.getRecord(img.batchId, img.jobId);
    if (!record || record.generation !== img.generation || !SEND_BACK_FROM.includes(record.state)) continue;
    const generation = img.generation + 1;
    const moved = await store.transition(
      img.batchId,
      img.jobId,
      { state: 'waiting', generation, taskId: null, failCode: null, failMsg: null, completedAt: null, submittedAt: null },
      { from: [record.state] },
    );
    if (moved.status !== 'ok' || moved.record.generation !== generation) continue;
    const data: SubmitJobData = {
      jobId: img.jobId,
      batchId: img.batchId,
      input: record.input,
      model: record.model,
      factor: record.factor,
      generation,
      ...(Object.keys(record.meta).length > 0 ? { meta: record.meta } : {}),
    };
    byBatch.set(img.batchId, [...(byBatch.get(img.batchId) ?? []), { name: 'submit', data, opts: { jobId: submitJobId(img.jobId, generation) } }]);
    sent++;
  }
  // Held for the batch scheduler like every submit job (as `upscale retry` does): they take their batch's turns and
  // wait while their batch is paused.
  for (const [batchId, jobs] of byBatch) await ctx.fair.holdJobs(batchId, jobs);
  if (sent > 0) {
    ctx.admission.kick();
    ctx.log.warn({ images: sent }, 'images of the tripped run went back to waiting');
  }
  return sent;
}
