/**
 * Operator controls over batches (`upscale status|retry|cancel`).
 * `retry` and `cancel` stream a batch's records (HSCAN pages), so a 100k-image batch is never loaded at once.
 */
import type { Job } from 'bullmq';
import { fairShareOf, lookaheadFor } from '../queue/fair-share.js';
import { submitJobId } from '../queue/identity.js';
import type { SubmitJobData } from '../queue/job-data.js';
import { laneStatus, type LaneStatusMap } from '../queue/lane-status.js';
import type { Lane } from '../queue/names.js';
import { requireBatch } from '../results/export.js';
import { pilotAwaitsApproval, type BatchSummary, type RecordState, type ResultRecord } from '../results/record.js';
import type { Runtime } from '../runtime.js';
import { pilotOutcome, type PilotOutcome } from '../batch/pilot.js';
import { outboxSummary, type OutboxSummary } from '../notify/index.js';
import { getRunway, type RunwayState } from '../worker/runway.js';

/** Records handled concurrently by retry/cancel (their Redis commands are pipelined by ioredis). */
const CHUNK = 200;

export interface StatusSnapshot {
  batches: BatchSummary[];
  lanes: LaneStatusMap;
  /** Notification delivery: targets, pending deliveries, recent events (of the batch, with `batchId`). */
  notifications: OutboxSummary;
  /** The credit runway as last read by a worker, or null before the first read. */
  credits: RunwayState | null;
  /** Pilot outcomes by batch id (batches with a pilot only). */
  pilots: Record<string, PilotOutcome>;
}

/** What `upscale status` shows: one batch (`batchId`) or every retained batch, newest first, and the lanes. */
export async function getStatus(rt: Runtime, options: { batchId?: string; now?: number } = {}): Promise<StatusSnapshot> {
  const now = options.now ?? Date.now();
  let batches: BatchSummary[];
  if (options.batchId === undefined) {
    batches = await rt.store.listBatches(now);
  } else {
    const summary = await rt.store.getSummary(options.batchId, now);
    if (!summary) await requireBatch(rt.store, options.batchId);
    batches = summary ? [summary] : [];
  }
  const pilots: Record<string, PilotOutcome> = {};
  for (const b of batches) {
    if (b.pilot === null || b.pilot === undefined) continue;
    const p = await pilotOutcome(rt, b.batchId, b);
    if (p) pilots[b.batchId] = p;
  }
  const [lanes, notifications, credits] = await Promise.all([
    laneStatus(rt),
    outboxSummary(rt, options.batchId === undefined ? { limit: 10 } : { limit: 10, batchId: options.batchId }),
    getRunway(rt),
  ]);
  return { batches, lanes, notifications, credits, pilots };
}

/**
 * Why work just put back into `batchId` will not move yet, in words for people, or null when it will. `tasks`
 * (retried images, which need a new task): the batch is paused (`upscale resume --batch`), its pilot waits for
 * approval, or the submit or poll lane is paused. `downloads` (outputs to fetch again): the download lane is paused; a
 * batch pause does not hold downloads. Every reason is named, each with the command that lifts it.
 */
export async function heldBack(rt: Runtime, batchId: string, work: 'tasks' | 'downloads'): Promise<string | null> {
  const [summary, lanes] = await Promise.all([rt.store.getSummary(batchId), laneStatus(rt)]);
  if (!summary) return null;
  const reasons: string[] = [];
  if (work === 'tasks') {
    if (summary.gate) reasons.push(`the batch is paused (${summary.gate.reason}): \`upscale resume --batch ${batchId}\``);
    if (pilotAwaitsApproval(summary)) reasons.push(`its pilot waits for approval: \`upscale approve --batch ${batchId}\``);
  }
  const needed: Lane[] = work === 'tasks' ? ['submit', 'poll'] : ['download'];
  for (const lane of needed) {
    const l = lanes[lane];
    if (l.paused) reasons.push(`the ${lane} lane is paused (${l.reason?.code ?? 'no reason recorded'}): \`upscale resume --lanes ${lane}\``);
  }
  if (reasons.length === 0) return null;
  const what = work === 'tasks' ? 'the retried images' : 'the missing outputs';
  return `${what} of batch ${batchId} do not move yet: ${reasons.join('; ')}`;
}

/** Yields a batch's records (or those of `source`) in arrays of at most `size`. */
async function* chunks(rt: Runtime, batchId: string, size = CHUNK, source?: AsyncIterable<ResultRecord>): AsyncGenerator<ResultRecord[]> {
  let chunk: ResultRecord[] = [];
  for await (const record of source ?? rt.store.records(batchId)) {
    chunk.push(record);
    if (chunk.length >= size) {
      yield chunk;
      chunk = [];
    }
  }
  if (chunk.length > 0) yield chunk;
}

const RETRYABLE: readonly RecordState[] = ['failed', 'timed_out'];

/**
 * Gives every `failed` or `timed_out` image of a batch a new generation: its record goes back to `waiting` (result
 * fields cleared) and a submit job `submitJobId(jobId, generation)` is added. The record's `from` guard makes a
 * concurrent or repeated retry a no-op for images already moved. Throws `UnknownBatchError` for an unknown batch.
 * With `options.records` (a filtered set of the batch, e.g. the batch page's "retry these"), only those are considered.
 * @returns `retried`: images given a new generation; `skipped`: every other record considered.
 */
export async function retry(
  rt: Runtime,
  batchId: string,
  options: { records?: AsyncIterable<ResultRecord> } = {},
): Promise<{ retried: number; skipped: number }> {
  await requireBatch(rt.store, batchId);
  const fair = fairShareOf(rt);
  let retried = 0;
  let skipped = 0;
  for await (const chunk of chunks(rt, batchId, CHUNK, options.records)) {
    const candidates = chunk.filter((r) => RETRYABLE.includes(r.state));
    skipped += chunk.length - candidates.length;
    const moved = await Promise.all(
      candidates.map(async (r) => {
        const generation = r.generation + 1;
        const t = await rt.store.transition(
          batchId,
          r.jobId,
          {
            state: 'waiting',
            generation,
            lastTaskId: r.taskId,
            lastFailCode: r.failCode,
            lastFailMsg: r.failMsg,
            taskId: null,
            resultUrls: [],
            failCode: null,
            failMsg: null,
            completedAt: null,
            submittedAt: null,
            outputPath: null,
            outputUrl: null,
            sha256: null,
            costTimeMs: null,
            kieCostTime: null,
            kieState: null,
            creditsConsumed: null,
          },
          { from: RETRYABLE },
        );
        return t.status === 'ok' ? { record: r, generation } : null;
      }),
    );
    const jobs = moved.filter((m) => m !== null);
    skipped += candidates.length - jobs.length;
    if (jobs.length === 0) continue;
    // Held for the batch scheduler like any submit job: they take the batch's turns and wait while it is paused;
    // first in the batch (they come back), ahead of its images not yet submitted.
    await fair.holdJobs(
      batchId,
      jobs.map(({ record: r, generation }) => {
        const data: SubmitJobData = { jobId: r.jobId, batchId, input: r.input, model: r.model, factor: r.factor, generation, ...(Object.keys(r.meta).length > 0 ? { meta: r.meta } : {}) };
        return { name: 'submit', data, opts: { jobId: submitJobId(r.jobId, generation) } };
      }),
      'first',
    );
    retried += jobs.length;
  }
  if (retried > 0) await fair.admit(lookaheadFor(rt.config.createLimit));
  return { retried, skipped };
}

/** True when BullMQ refused to remove a job because a worker holds its lock. */
function isLockedError(e: unknown): boolean {
  return /locked/i.test(e instanceof Error ? e.message : String(e));
}

const CANCELLABLE: readonly RecordState[] = ['waiting', 'held', 'submitting'];

/**
 * Cancels the images of a batch that have not reached kie.ai: a `waiting`/`held`/`submitting` image whose submit job is
 * gone, or exists with no `taskId` and is not active, has its job removed and is recorded `cancelled`. Active jobs
 * and submitted tasks (`polling`) are followed to their end. Throws `UnknownBatchError` for an unknown batch.
 * @returns `cancelled`: images recorded cancelled now; `inFlight`: images left running (active, submitted, polling).
 */
export async function cancel(rt: Runtime, batchId: string, options: { now?: number } = {}): Promise<{ cancelled: number; inFlight: number }> {
  await requireBatch(rt.store, batchId);
  // Nothing of this batch is admitted from now on; its held jobs are removed below like waiting ones.
  await fairShareOf(rt).dropHeld(batchId);
  let cancelled = 0;
  let inFlight = 0;
  for await (const chunk of chunks(rt, batchId)) {
    const outcomes = await Promise.all(
      chunk.map(async (r): Promise<'cancelled' | 'inFlight' | 'ignored'> => {
        if (r.state === 'polling') return 'inFlight';
        if (!CANCELLABLE.includes(r.state)) return 'ignored';
        const job = (await rt.queues.submit.getJob(submitJobId(r.jobId, r.generation))) as Job<SubmitJobData> | undefined;
        if (job) {
          if (job.data.taskId || (await job.isActive())) return 'inFlight';
          try {
            await job.remove();
          } catch (e) {
            if (isLockedError(e)) return 'inFlight';
            throw e;
          }
        }
        const t = await rt.store.transition(batchId, r.jobId, { state: 'cancelled', completedAt: options.now ?? Date.now() }, { from: CANCELLABLE });
        if (t.status === 'ok') return 'cancelled';
        return t.status === 'refused' && t.previous === 'polling' ? 'inFlight' : 'ignored';
      }),
    );
    for (const o of outcomes) {
      if (o === 'cancelled') cancelled++;
      else if (o === 'inFlight') inFlight++;
    }
  }
  return { cancelled, inFlight };
}
