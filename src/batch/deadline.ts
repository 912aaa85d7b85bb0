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
import { formatCount, formatDuration, parseDuration } from '../config/units.js';
import type { Logger } from '../log.js';
import { batchExpired, emit } from '../notify/index.js';
import { fairShareOf, PRIORITY_WEIGHTS, type Priority } from '../queue/fair-share.js';
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

/** Another batch competing for the create budget: its images not yet admitted and its priority. */
export interface Competitor {
  held: number;
  priority: Priority;
}

export interface WindowFitInput {
  /** This enqueue's images (ms and counts below are for them). */
  images: number;
  /**
   * Submit jobs served before any batch's turn, whatever the priorities: already admitted to the submit queue's wait
   * list (a few: the scheduler's lookahead), or every image ahead when `competitors` is not given (FIFO).
   */
  ahead: number;
  /** The create budget: `max` createTask calls per `durationMs`, shared by every process. */
  createLimit: { max: number; durationMs: number };
  /** End of the window (Unix ms). */
  deadlineAt: number;
  now: number;
  /** This batch's priority. @defaultValue `normal` */
  priority?: Priority;
  /** Images of this batch already waiting their turn, served before this enqueue's. @defaultValue `0` */
  own?: number;
  /** The other batches sharing the budget (src/queue/fair-share.ts). @defaultValue none */
  competitors?: readonly Competitor[];
}

export interface WindowFit {
  /** Time until the budget, shared as the scheduler shares it, has submitted this enqueue's last image (ms). */
  neededMs: number;
  /** Time left until the deadline (ms). */
  availableMs: number;
  fits: boolean;
  /** Images of this enqueue the budget cannot submit before the deadline, about (0 when it fits). */
  wouldExpire: number;
}

/**
 * This batch's share of the create budget over time, as the batch scheduler (src/queue/fair-share.ts) hands it out,
 * in the fluid limit: `ahead` first (FIFO), then every urgent batch before any other (round-robin among urgent
 * ones), then the others by weight (high 4 : normal 2 : low 1) until each runs out. Returns phases of
 * `{ ms, rate }`: this batch receives `rate` images per ms for `ms`, until its `own + images` are submitted.
 */
function shareOf(o: WindowFitInput): { ms: number; rate: number }[] {
  const r = o.createLimit.max / o.createLimit.durationMs;
  const mine = o.priority ?? 'normal';
  const others = o.competitors ?? [];
  const phases: { ms: number; rate: number }[] = [];
  if (o.ahead > 0) phases.push({ ms: o.ahead / r, rate: 0 });
  const urgentFirst = mine === 'urgent' ? 0 : others.filter((c) => c.priority === 'urgent').reduce((n, c) => n + c.held, 0);
  if (urgentFirst > 0) phases.push({ ms: urgentFirst / r, rate: 0 });
  const weight = (p: Priority) => (p === 'urgent' ? 1 : PRIORITY_WEIGHTS[p]);
  const rivals = others.filter((c) => c.held > 0 && (mine === 'urgent') === (c.priority === 'urgent')).map((c) => ({ left: c.held, w: weight(c.priority) }));
  let left = (o.own ?? 0) + o.images;
  const w = weight(mine);
  while (left > 1e-9) {
    const total = w + rivals.reduce((n, c) => n + c.w, 0);
    // The next to run out: this batch, or the rival with the least time left at its share.
    let ms = (left * total) / (r * w);
    for (const c of rivals) ms = Math.min(ms, (c.left * total) / (r * c.w));
    phases.push({ ms, rate: (r * w) / total });
    left -= (r * w * ms) / total;
    for (const c of rivals) c.left -= (r * c.w * ms) / total;
    for (let i = rivals.length - 1; i >= 0; i--) if ((rivals[i] as { left: number }).left <= 1e-9) rivals.splice(i, 1);
  }
  return phases;
}

/**
 * Whether this enqueue's `images` can be submitted before `deadlineAt` under the create budget, shared with what is
 * ahead and beside them the way the batch scheduler shares it (see {@link shareOf}). Ignores pre-flight and task
 * times (submission only), and a pilot's hold (as if approved at once).
 */
export function windowFit(o: WindowFitInput): WindowFit {
  const phases = shareOf(o);
  const neededMs = Math.ceil(phases.reduce((n, p) => n + p.ms, 0));
  const availableMs = Math.max(0, o.deadlineAt - o.now);
  let served = 0;
  let t = 0;
  for (const p of phases) {
    if (t >= availableMs) break;
    served += p.rate * Math.min(p.ms, availableMs - t);
    t += p.ms;
  }
  const mineSubmitted = Math.max(0, Math.floor(served + 1e-6) - (o.own ?? 0));
  const wouldExpire = Math.max(0, o.images - mineSubmitted);
  return { neededMs, availableMs, fits: wouldExpire === 0, wouldExpire };
}

/** What shares the create budget at one moment (read before an enqueue): see {@link readBudgetShare}. */
export interface BudgetShare {
  /** Submit jobs already admitted (waiting or prioritized in the submit queue). */
  admitted: number;
  /** This batch's images already held by the scheduler. */
  own: number;
  competitors: (Competitor & { batchId: string })[];
}

/** Reads what shares the create budget now, for {@link windowFit}; `batchId` is the batch about to be enqueued. */
export async function readBudgetShare(rt: Runtime, batchId: string): Promise<BudgetShare> {
  const [counts, backlog] = await Promise.all([rt.queues.submit.getJobCounts('waiting', 'prioritized'), fairShareOf(rt).backlog()]);
  return {
    admitted: (counts.waiting ?? 0) + (counts.prioritized ?? 0),
    own: backlog.find((b) => b.batchId === batchId)?.held ?? 0,
    competitors: backlog.filter((b) => b.batchId !== batchId),
  };
}

/**
 * The enqueue's warning when the window cannot hold the batch, or null when it fits:
 * `the deadline cannot fit: 10 images need about 25s at 20 per 10s (sharing it with 1 other batch of 100 images; this
 * one at priority low, weights high 4 : normal 2 : low 1, urgent first), and the deadline is in 8.0s: about 7 images
 * would expire`.
 */
export function deadlineWarning(fit: WindowFit, o: { images: number; share: BudgetShare; priority: Priority; createLimit: { max: number; durationMs: number } }): string | null {
  if (fit.fits) return null;
  const others = o.share.competitors.filter((c) => c.held > 0);
  const held = others.reduce((n, c) => n + c.held, 0);
  const beside =
    others.length === 0
      ? 'with no other batch waiting'
      : `sharing it with ${formatCount(others.length, 'other batch')} of ${formatCount(held, 'image')}; this one at priority ${o.priority}, weights high 4 : normal 2 : low 1, urgent first`;
  const admitted = o.share.admitted > 0 ? `; after ${formatCount(o.share.admitted, 'image')} already admitted` : '';
  return (
    `the deadline cannot fit: ${formatCount(o.images, 'image')} ${o.images === 1 ? 'needs' : 'need'} about ${formatDuration(fit.neededMs)} at ${o.createLimit.max} per ${formatDuration(o.createLimit.durationMs)} (${beside}${admitted}), ` +
    `and the deadline is in ${formatDuration(fit.availableMs)}: about ${formatCount(fit.wouldExpire, 'image')} would expire`
  );
}
