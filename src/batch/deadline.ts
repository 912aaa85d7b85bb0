/**
 * A batch's completion window (`upscale enqueue --deadline 24h|DATE`). The end of the window is a field of the
 * batch summary (`deadlineAt`, Unix ms). Once it has passed:
 * - the submit lane sends nothing more for the batch: an image reaching it is recorded `expired` (failCode
 *   `expired`) before any credit is spent (`deadlineRefusal`, called from the input preparation);
 * - the batch watch records every image still `waiting` or `held` `expired` (its submit job removed), so images
 *   stuck behind a paused lane or a pilot end too (`expireDue`), and stores `batch.expired` once;
 * - images already submitted are followed to their end and keep their results.
 */
import type { Job } from 'bullmq';
import { parseDuration } from '../config/units.js';
import type { Logger } from '../log.js';
import { batchExpired, emit } from '../notify/index.js';
import { submitJobId } from '../queue/identity.js';
import type { SubmitJobData } from '../queue/job-data.js';
import type { BatchSummary, RecordState } from '../results/record.js';
import type { Runtime } from '../runtime.js';

/**
 * Reads `--deadline`: a duration from `now` (`24h`, `90m`, `1d12h`) or a date with a time zone
 * (`2026-12-01T06:00Z`, `2026-12-01T07:00+01:00`) or a plain date (`2026-12-01`, midnight UTC).
 * Throws a `RangeError` naming the value and the reason (unreadable, no time zone, in the past).
 */
export function parseDeadline(text: string, now = Date.now()): number {
  const s = text.trim();
  if (/^\d+(\.\d+)?(ms|s|m|h|d)/.test(s) && !/^\d{4}-/.test(s)) {
    try {
      return now + parseDuration(s);
    } catch (e) {
      throw new RangeError(`--deadline ${(e as Error).message}`);
    }
  }
  if (/^\d{4}-\d{2}-\d{2}$/.test(s)) {
    const at = Date.parse(`${s}T00:00:00Z`);
    if (Number.isNaN(at)) throw new RangeError(`--deadline "${text}" is not a date`);
    if (at <= now) throw new RangeError(`--deadline "${text}" is in the past`);
    return at;
  }
  if (/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}/.test(s)) {
    if (!/(Z|[+-]\d{2}:?\d{2})$/i.test(s)) {
      throw new RangeError(`--deadline "${text}" has no time zone; add Z (UTC) or an offset such as +01:00`);
    }
    const at = Date.parse(s.replace(' ', 'T'));
    if (Number.isNaN(at)) throw new RangeError(`--deadline "${text}" is not a date`);
    if (at <= now) throw new RangeError(`--deadline "${text}" is in the past`);
    return at;
  }
  throw new RangeError(`--deadline "${text}" is neither a duration (24h, 90m) nor a date (2026-12-01T06:00Z)`);
}

/** Sets (or moves) the end of a batch's completion window. */
export async function setBatchDeadline(rt: Runtime, batchId: string, deadlineAt: number): Promise<void> {
  const key = rt.store.keys.batch(batchId);
  await rt.redis.multi().hset(key, 'deadlineAt', String(deadlineAt)).pexpire(key, rt.store.retentionMs).exec();
}

/** The end of the batch's window (Unix ms), or null without one. */
export async function getBatchDeadline(rt: Runtime, batchId: string): Promise<number | null> {
  const v = await rt.redis.hget(rt.store.keys.batch(batchId), 'deadlineAt');
  return v === null ? null : Number(v);
}

function expiredMessage(deadlineAt: number): string {
  return `not submitted before the batch's deadline (${new Date(deadlineAt).toISOString()})`;
}

/** For the submit lane: a refusal when the batch's window has closed, else null. Nothing is paid for an expired image. */
export async function deadlineRefusal(rt: Runtime, batchId: string, now = Date.now()): Promise<{ failCode: 'expired'; failMsg: string } | null> {
  const deadlineAt = await getBatchDeadline(rt, batchId);
  if (deadlineAt === null || now < deadlineAt) return null;
  return { failCode: 'expired', failMsg: expiredMessage(deadlineAt) };
}

const UNSENT: readonly RecordState[] = ['waiting', 'held'];

/**
 * Records every `waiting`/`held` image of a batch whose window closed `expired`, removing its submit job unless a
 * worker holds it (that one is caught by the submit lane's check). Returns how many were expired now.
 */
export async function expireBatch(rt: Runtime, batchId: string, deadlineAt: number, now = Date.now()): Promise<number> {
  let expired = 0;
  const failMsg = expiredMessage(deadlineAt);
  for await (const r of rt.store.records(batchId)) {
    if (!UNSENT.includes(r.state)) continue;
    const job = (await rt.queues.submit.getJob(submitJobId(r.jobId, r.generation))) as Job<SubmitJobData> | undefined;
    if (job) {
      if (job.data.taskId || (await job.isActive())) continue;
      try {
        await job.remove();
      } catch {
        continue; // locked by a worker right now: its submit lane check expires it
      }
    }
    const t = await rt.store.transition(batchId, r.jobId, { state: 'expired', failCode: 'expired', failMsg, completedAt: now }, { from: UNSENT });
    if (t.status === 'ok') expired++;
  }
  return expired;
}

/** The batch watch's step: expires what is left of every batch whose window closed, and stores `batch.expired` once. */
export async function expireDue(rt: Runtime, open: readonly BatchSummary[], now: number, log: Logger): Promise<void> {
  for (const b of open) {
    const deadlineAt = b.deadlineAt ?? null;
    if (deadlineAt === null || now < deadlineAt || b.counts.waiting + b.counts.held === 0) continue;
    const expired = await expireBatch(rt, b.batchId, deadlineAt, now);
    const after = await rt.store.getSummary(b.batchId, now);
    const inFlight = after ? after.counts.submitting + after.counts.polling : 0;
    if (await emit(rt, batchExpired({ batchId: b.batchId, deadlineAt, expired: after?.counts.expired ?? expired, inFlight }, now), now)) {
      log.warn({ batchId: b.batchId, expired, inFlight }, 'batch deadline passed: images not submitted are expired');
    }
  }
}

export interface WindowFit {
  /** Time the create budget needs to submit `ahead + images` (ms). */
  neededMs: number;
  /** Time left until the deadline (ms). */
  availableMs: number;
  fits: boolean;
  /** Images of this batch the budget cannot submit before the deadline, about (0 when it fits). */
  wouldExpire: number;
}

/**
 * Whether `images` can be submitted before `deadlineAt` under the create budget (`max` per `durationMs`, global),
 * with `ahead` images already waiting in the submit queue. Ignores pre-flight and task times (submission only).
 */
export function windowFit(o: { images: number; ahead: number; createLimit: { max: number; durationMs: number }; deadlineAt: number; now: number }): WindowFit {
  const perMs = o.createLimit.max / o.createLimit.durationMs;
  const neededMs = Math.ceil((o.ahead + o.images) / perMs);
  const availableMs = Math.max(0, o.deadlineAt - o.now);
  const submittable = Math.max(0, Math.floor(availableMs * perMs) - o.ahead);
  const wouldExpire = Math.max(0, o.images - submittable);
  return { neededMs, availableMs, fits: wouldExpire === 0, wouldExpire };
}
