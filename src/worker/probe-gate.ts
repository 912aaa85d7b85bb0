/**
 * The submit lane's side of an image probe (lane-probe.ts). While a paused lane probes, its queue runs again, but
 * only one image may send: the first job to start takes the probe token (its job id, in Redis, shared by every
 * worker); the others are parked for a moment and stay `waiting` in their records. The probe's answer decides:
 * success lifts the pause (`liftPause`), the same refusal pauses the lane again (through the normal outcome), and
 * anything else (a rate limit, this image's own bad input) hands the probe to the next image (`releaseProbe`).
 *
 * `mayPassPause` is the submit lane's last look before a createTask goes out: a job that started before the lane
 * paused (it was in its pre-flight, or held at the send gate) must not send after the pause.
 */
import { DelayedError, type Job } from 'bullmq';
import { parsePauseReason, type PauseReason } from '../queue/pause-reason.js';
import type { SubmitJobData } from '../queue/job-data.js';
import type { LaneContext } from './context.js';

export type GateVerdict =
  /** No probe under way: the job runs as usual. */
  | { probe: false }
  /** This job is the probe; `reason` is the pause it probes. */
  | { probe: true; reason: PauseReason };

/** How long a job that is not the probe waits before it starts again (ms). */
function parkMs(ctx: LaneContext): number {
  return Math.max(200, Math.min(5000, Math.round(ctx.rt.config.probeCooldownMs / 10)));
}

/**
 * Called first thing when a submit job starts, with the submit lane's pause reason (`raw`, the JSON stored under
 * `pauseReason('submit')`, or null) as read with the job's first reads. Returns whether this job is the probe;
 * parks the job (throws BullMQ's DelayedError) when another image is probing.
 */
export async function enterProbeGate(ctx: LaneContext, job: Job<SubmitJobData>, raw: string | null, token?: string): Promise<GateVerdict> {
  const { rt } = ctx;
  if (!raw) return { probe: false };
  const reason = parsePauseReason(raw);
  if (!reason.probe?.running) return { probe: false };
  const key = rt.store.keys.probeToken('submit');
  const id = job.id ?? job.data.jobId;
  const holdMs = Math.max(60_000, rt.config.jobLockMs * 2, rt.config.requestTimeoutMs * 2);
  const took = await rt.redis.set(key, id, 'PX', holdMs, 'NX');
  if (took === 'OK' || (await rt.redis.get(key)) === id) {
    ctx.log.info({ jobId: job.data.jobId, batchId: job.data.batchId, code: reason.code }, 'this image is the probe of the paused submit lane');
    return { probe: true, reason };
  }
  await job.moveToDelayed(Date.now() + parkMs(ctx), token);
  throw new DelayedError();
}

/** The probe met neither success nor its refusal: the next image to start probes instead. */
export async function releaseProbe(ctx: LaneContext, job: Job<SubmitJobData>): Promise<void> {
  const key = ctx.rt.store.keys.probeToken('submit');
  if ((await ctx.rt.redis.get(key)) === (job.id ?? job.data.jobId)) await ctx.rt.redis.del(key);
}

/**
 * The last look before createTask is sent, after the pre-flight and the send gate (which can take seconds), when the
 * submit lane has a pause reason (`raw`, read by the send claim in the same step as the batch's gate: send-claim.ts):
 * false when the job may not send: the lane is paused (a 401 met while polling, a 402 or 433, the breaker, the credit
 * runway, `upscale pause`), or a probe runs and this job is not it. The caller gives the job back to waiting, nothing
 * sent. A reason whose queue is not paused (a process died between writing the reason and pausing) does not hold the
 * job. A pause that lands after this look (a few ms before the send) is not seen: that call meets kie.ai as before.
 */
export async function mayPassPause(ctx: LaneContext, verdict: GateVerdict, raw: string): Promise<boolean> {
  const reason = parsePauseReason(raw);
  if (reason.probe?.running) return verdict.probe;
  return !(await ctx.rt.queues.submit.isPaused());
}
