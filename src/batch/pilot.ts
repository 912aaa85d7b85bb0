/**
 * A batch's pilot (`upscale enqueue --pilot N`): every image is enqueued `held` (a record, no submit job); then N of
 * them, spread evenly over the input's lines, are released (`waiting`, with their submit jobs) and remembered in the
 * batch's pilot set. The rest stay held until `upscale approve --batch ID` (src/control/pilot.ts) releases them, or
 * `upscale cancel` / the deadline ends them. Images added to the batch later are held too, until approval.
 *
 * The outcome (`pilotOutcome`) is read from the pilot images' records: their states, the credits kie.ai reported,
 * credits per succeeded image, and that price times the batch's images (the extrapolated total). When every pilot
 * image is done, the batch watch stores `batch.paused` (reason `pilot`) with the outcome, once.
 */
import { fairShareOf, lookaheadFor } from '../queue/fair-share.js';
import { submitJobId } from '../queue/identity.js';
import type { SubmitJobData } from '../queue/job-data.js';
import { batchPaused, emit } from '../notify/index.js';
import { formatCount } from '../config/units.js';
import { isTerminal, pilotAwaitsApproval, type BatchSummary, type RecordState, type ResultRecord } from '../results/record.js';
import { pilotNext } from '../results/status-view.js';
import type { Runtime } from '../runtime.js';

export function pilotKey(rt: Runtime, batchId: string): string {
  return `${rt.store.keys.batch(batchId)}:pilot`;
}

/** Marks a batch as piloted with `n` images before its images are enqueued (so workers and late images know). */
export async function declarePilot(rt: Runtime, batchId: string, n: number, now = Date.now()): Promise<void> {
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`a pilot must be a whole number of images ≥ 1 (got ${n})`);
  const key = rt.store.keys.batch(batchId);
  await rt.redis.multi().hsetnx(key, 'pilot', String(n)).hsetnx(key, 'pilotStartedAt', String(now)).pexpire(key, rt.store.retentionMs).exec();
}

/** True while new images of the batch must be held: it has a pilot that was not approved yet. */
export async function holdsNewImages(rt: Runtime, batchId: string): Promise<boolean> {
  const [pilot, approved] = await rt.redis.hmget(rt.store.keys.batch(batchId), 'pilot', 'pilotApprovedAt');
  return pilot !== null && pilot !== undefined && (approved === null || approved === undefined);
}

/** Indexes of `count` items spread evenly over `total` (the middle of each of `count` equal parts). */
export function spread(total: number, count: number): number[] {
  const n = Math.min(total, count);
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(Math.min(total - 1, Math.floor(((i + 0.5) * total) / n)));
  return [...new Set(out)];
}

/** Adds the submit jobs of `records` after moving them from `held` to `waiting`; returns how many moved. */
export async function release(rt: Runtime, batchId: string, records: readonly ResultRecord[]): Promise<number> {
  const moved: ResultRecord[] = [];
  for (const r of records) {
    const t = await rt.store.transition(batchId, r.jobId, { state: 'waiting' }, { from: ['held'] });
    if (t.status === 'ok') moved.push(t.record);
  }
  if (moved.length > 0) {
    // Through the batch scheduler like every submit job: released images take the batch's turns (fair share).
    const fair = fairShareOf(rt);
    await fair.holdJobs(
      batchId,
      moved.map((r) => {
        const data: SubmitJobData = { jobId: r.jobId, batchId, input: r.input, model: r.model, factor: r.factor, generation: r.generation };
        return { name: 'submit', data, opts: { jobId: submitJobId(r.jobId, r.generation) } };
      }),
    );
    await fair.admit(lookaheadFor(rt.config.createLimit));
  }
  return moved.length;
}

/**
 * Releases the pilot: N held images spread over the input (by line, then id). Idempotent: a batch whose pilot set
 * already holds images releases nothing more (a re-run of `enqueue --pilot` after a crash releases what is missing).
 * @returns the pilot's images released now.
 */
export async function startPilot(rt: Runtime, batchId: string, n: number): Promise<number> {
  const key = pilotKey(rt, batchId);
  const chosen = await rt.redis.smembers(key);
  if (chosen.length === 0) {
    const held: { line: number; jobId: string }[] = [];
    for await (const r of rt.store.records(batchId)) if (r.state === 'held') held.push({ line: r.line ?? Number.MAX_SAFE_INTEGER, jobId: r.jobId });
    held.sort((a, b) => a.line - b.line || a.jobId.localeCompare(b.jobId));
    const pick = spread(held.length, n).map((i) => (held[i] as { jobId: string }).jobId);
    if (pick.length === 0) return 0;
    await rt.redis.multi().sadd(key, ...pick).pexpire(key, rt.store.retentionMs).exec();
    chosen.push(...pick);
  }
  const records = await Promise.all(chosen.map((id) => rt.store.getRecord(batchId, id)));
  return release(rt, batchId, records.filter((r): r is ResultRecord => r !== null && r.state === 'held'));
}

export interface PilotOutcome {
  /** Images in the pilot. */
  images: number;
  /** Pilot images per state. */
  counts: Partial<Record<RecordState, number>>;
  /** True when every pilot image is in a terminal state. */
  done: boolean;
  /** Credits kie.ai reported for the pilot's images. */
  credits: number;
  /** Credits per succeeded pilot image (null before the first success). */
  creditsPerImage: number | null;
  /** creditsPerImage × the batch's images (null before the first success). */
  extrapolatedCredits: number | null;
  /** creditsPerImage × the images still held (what approval would spend, about). */
  extrapolatedRemaining: number | null;
  approvedAt: number | null;
}

/** The pilot's outcome so far, or null when the batch has no pilot. */
export async function pilotOutcome(rt: Runtime, batchId: string, summary?: BatchSummary | null): Promise<PilotOutcome | null> {
  const ids = await rt.redis.smembers(pilotKey(rt, batchId));
  if (ids.length === 0) return null;
  const s = summary ?? (await rt.store.getSummary(batchId));
  const records = (await Promise.all(ids.map((id) => rt.store.getRecord(batchId, id)))).filter((r): r is ResultRecord => r !== null);
  const counts: Partial<Record<RecordState, number>> = {};
  let credits = 0;
  let succeeded = 0;
  for (const r of records) {
    counts[r.state] = (counts[r.state] ?? 0) + 1;
    credits += r.creditsConsumed ?? 0;
    if (r.state === 'succeeded') succeeded++;
  }
  const per = succeeded > 0 ? round(credits / succeeded) : null;
  return {
    images: records.length,
    counts,
    done: records.every((r) => isTerminal(r.state)),
    credits: round(credits),
    creditsPerImage: per,
    extrapolatedCredits: per === null || !s ? null : round(per * s.total),
    extrapolatedRemaining: per === null || !s ? null : round(per * s.counts.held),
    approvedAt: s?.pilotApprovedAt ?? null,
  };
}

/**
 * One line for people: `pilot 20 images: 19 succeeded, 1 failed · 20 credits/image · about 2000000 credits for all
 * 100000 images · done: run \`upscale approve --batch B\` ...` (what comes next: `pilotNext`, the same words as
 * `upscale status` and the batches page).
 */
export function describePilot(p: PilotOutcome, batch: BatchSummary): string {
  const states = Object.entries(p.counts)
    .map(([s, n]) => `${n} ${s}`)
    .join(', ');
  const price = p.creditsPerImage === null ? 'no credits measured yet' : `${p.creditsPerImage} credits/image · about ${p.extrapolatedCredits} credits for all ${formatCount(batch.total, 'image')}`;
  return `pilot ${formatCount(p.images, 'image')}: ${states} · ${price} · ${pilotNext(batch, p)}`;
}

/** The batch watch's step: `batch.paused` (reason `pilot`) once, when a pilot's images are all done and the rest is held. */
export async function watchPilots(rt: Runtime, open: readonly BatchSummary[], now: number): Promise<void> {
  for (const b of open) {
    if (!pilotAwaitsApproval(b)) continue;
    const outcome = await pilotOutcome(rt, b.batchId, b);
    if (!outcome?.done) continue;
    const startedAt = Number(await rt.redis.hget(rt.store.keys.batch(b.batchId), 'pilotStartedAt')) || 0;
    await emit(
      rt,
      batchPaused(
        {
          lane: 'submit',
          code: 'pilot',
          message: describePilot(outcome, b),
          since: startedAt,
          batches: [b.batchId],
          batchId: b.batchId,
          extra: { pilot: outcome },
          action: `run \`upscale approve --batch ${b.batchId}\` to submit the ${formatCount(b.counts.held, 'held image')}, or \`upscale cancel --batch ${b.batchId}\``,
        },
        now,
      ),
      now,
    );
  }
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}
