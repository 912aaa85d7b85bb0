/**
 * Done-when test of fair share (issue 15), at ×5 (create budget 20 per 2 s = 10/s), with a real `upscale worker`
 * process and the simulator:
 * - batch A of 2,000 images enqueued first, batch B of 20 a moment later: B is all submitted within about
 *   2 × 20 ÷ rate of its enqueue (half the budget), not after A;
 * - batch U of 20 `urgent`: within about 20 ÷ rate;
 * - A paused: C and D (20 each) take the whole budget, A submits nothing new; resumed, A continues;
 * - throughout: 0 429s, no sliding window over the limit, nothing created twice, no image lost.
 * And (at ×10): a batch paused while one of its images is already running, held at the send gate, sends nothing
 * more; the image is held again and goes once the batch resumes.
 * "About" is counted in create slots, i.e. job starts under the limiter (B's 20 start within 2 × 20 slots plus the
 * few already admitted), and in time with a margin for a loaded machine; FIFO would take 2,000 ÷ rate = 200 s.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { cancel, pauseBatch, resumeBatch } from '../../src/control/index.js';
import { enqueue } from '../../src/producer/index.js';
import { fairShareOf } from '../../src/queue/fair-share.js';
import { isTerminal, type ResultRecord } from '../../src/results/record.js';
import { batchRecords, holdSendPlace, startRig, topazImages, waitForBatch, type Rig } from '../helpers/pipeline.js';
import { waitFor } from '../helpers/redis.js';

const SCALE = 5;
/** createTask per second at this scale. */
const RATE = 20 / (10 / SCALE);
/**
 * Wall-clock allowance over the nominal time: a loaded machine (load 20 on 2 cores seen) runs the limiter's slots
 * late and jobs slowly. The shares are asserted exactly in create slots; FIFO would take B 50× the nominal time.
 */
const SLACK = 4;
/**
 * Jobs a new batch may start behind: the admitted lookahead (3 at this rate) and the few being admitted by rounds
 * already running when it arrived (seen up to 6 in all on a loaded machine). Normal fair share would give U 2 × 20.
 */
const AHEAD = 8;

describe('fair share across batches (worker process, simulator at ×5)', () => {
  let rig: Rig | undefined;
  afterEach(async () => {
    await rig?.stop();
    rig = undefined;
  });

  function records(batchId: string): Promise<ResultRecord[]> {
    return batchRecords(rig!, batchId);
  }

  /** Submit times (record `submittedAt`, ms) of a batch's images that have a task. */
  async function submitted(batchId: string): Promise<number[]> {
    return (await records(batchId)).flatMap((r) => (r.submittedAt === null ? [] : [r.submittedAt]));
  }

  /**
   * Start times of submit jobs by batch (BullMQ's `processedOn`, set when the limiter lets a job start), of the
   * jobs BullMQ still keeps (the last 100 completed, JOB_RETENTION, and every active one): read right after the
   * batch measured, while its jobs are among them.
   */
  async function starts(): Promise<Map<string, number[]>> {
    const jobs = await rig!.rt.queues.submit.getJobs(['completed', 'active'], 0, -1);
    const out = new Map<string, number[]>();
    for (const j of jobs) {
      const batchId = (j.data as { batchId: string }).batchId;
      if (j.processedOn !== undefined) out.set(batchId, [...(out.get(batchId) ?? []), j.processedOn]);
    }
    return out;
  }

  /**
   * Create slots used from `t0` until the last job of `batchId` started: starts of any batch in that window.
   * The limiter hands out slots at the create rate however loaded the machine is, so this measures the share
   * without the machine's speed.
   */
  async function slotsUntilDone(batchId: string, t0: number): Promise<{ total: number; own: number }> {
    const byBatch = await starts();
    const end = Math.max(...(byBatch.get(batchId) ?? [Infinity]));
    const all = [...byBatch.values()].flat();
    return { total: all.filter((t) => t > t0 && t <= end).length, own: (byBatch.get(batchId) ?? []).length };
  }

  /** A's images that have a task (or ended without one other than cancelled), from its summary. */
  async function aSubmitted(): Promise<number> {
    const s = (await rig!.rt.store.getSummary('A'))!;
    return s.total - s.counts.waiting - s.counts.submitting - s.counts.cancelled;
  }

  async function notYetSubmitted(batchId: string): Promise<number> {
    const s = await rig!.rt.store.getSummary(batchId);
    return s ? s.counts.waiting + s.counts.submitting : Infinity;
  }

  function items(name: string, n: number) {
    return Array.from({ length: n }, (_, i) => ({ input: rig!.image(`${name}${i}`), model: 'topaz/image-upscale', factor: '2' }));
  }

  /** Enqueues a batch and waits until every image of it has a task; resolves with ms from enqueue to the last. */
  async function timeBatch(batchId: string, n: number, priority?: string): Promise<{ t0: number; ms: number; last: number }> {
    const t0 = Date.now();
    const r = await enqueue(rig!.rt, items(batchId, n), { batchId, ...(priority ? { priority } : {}) });
    expect(r.enqueued).toBe(n);
    await waitFor(async () => (await notYetSubmitted(batchId)) === 0, { timeoutMs: 60_000, intervalMs: 50, what: `batch ${batchId} submitted` });
    const last = Math.max(...(await submitted(batchId)));
    return { t0, ms: last - t0, last };
  }

  it('shares the create budget, lets urgent go first, and pauses one batch while others use the whole budget', async () => {
    rig = await startRig({ timeScale: SCALE });
    await rig.startWorker();
    const big = await enqueue(rig.rt, items('A', 2000), { batchId: 'A' });
    expect(big.enqueued).toBe(2000);
    await waitFor(async () => (await rig!.rt.store.getSummary('A'))!.counts.waiting <= 1990, { timeoutMs: 30_000, what: 'A running' });

    // Measured now, checked at the end: heavy reads in this process (which also runs the simulator) while
    // submissions go on would delay the simulator's clock and bunch arrivals. The job starts are read at once (at
    // most 100 completed submit jobs and the active ones), before BullMQ trims the batch's jobs.
    const b = await timeBatch('B', 20);
    const bSlots = await slotsUntilDone('B', b.t0);
    const u = await timeBatch('U', 20, 'urgent');
    const uSlots = await slotsUntilDone('U', u.t0);

    // A paused: C and D share the whole budget, A submits nothing new.
    await pauseBatch(rig.rt, 'A');
    const pausedAt = Date.now();
    const [c, d] = await Promise.all([timeBatch('C', 20), timeBatch('D', 20)]);
    expect((await rig.rt.store.getSummary('A'))!.gate).toMatchObject({ state: 'paused' });
    const aAtResume = await aSubmitted();
    const resumedAt = Date.now();
    await resumeBatch(rig.rt, 'A');
    await waitFor(async () => (await aSubmitted()) >= aAtResume + 10, { timeoutMs: 30_000, what: 'A resumed' });

    // End: cancel the rest of A; everything else is followed to its end.
    await cancel(rig.rt, 'A');
    const batches = ['A', 'B', 'U', 'C', 'D'];
    await waitFor(
      async () => {
        for (const id of batches) if ((await rig!.rt.store.getSummary(id))!.finishedAt === null) return false;
        return true;
      },
      { timeoutMs: 120_000, intervalMs: 250, what: 'every batch finished' },
    );
    const all = (await Promise.all(batches.map(records))).flat();

    // B, normal: half the budget at once. Counted in create slots (job starts under the limiter from B's enqueue
    // to its last start), which the limiter hands out at the rate however loaded the machine is, and in time.
    if (process.env.FAIR_DEBUG) console.log({ b, bSlots, u, uSlots, c, d });
    expect(bSlots.own).toBe(20);
    expect(bSlots.total).toBeLessThanOrEqual(2 * 20 + AHEAD);
    const aTimes = all.filter((r) => r.batchId === 'A' && r.submittedAt !== null).map((r) => r.submittedAt!);
    expect(aTimes.filter((t) => t > b.t0 && t <= b.last).length).toBeGreaterThanOrEqual(12); // A kept about half
    expect(b.ms).toBeLessThanOrEqual(SLACK * ((2 * 20) / RATE) * 1000);
    // U, urgent: first outright.
    expect(uSlots.own).toBe(20);
    expect(uSlots.total).toBeLessThanOrEqual(20 + AHEAD);
    expect(u.ms).toBeLessThanOrEqual(SLACK * (20 / RATE) * 1000);
    // A paused: a job past its last look before sending when the pause came may still send (its answer within a
    // second); nothing after that until the resume (jobs held at the send gate go back), while C and D took the whole
    // budget.
    expect(aTimes.filter((t) => t > pausedAt + 1000 && t < resumedAt)).toEqual([]);
    expect(Math.max(c.ms, d.ms)).toBeLessThanOrEqual(SLACK * (40 / RATE) * 1000); // 60 / rate if A took its third

    expect(all).toHaveLength(2000 + 4 * 20);
    expect(all.every((r) => isTerminal(r.state))).toBe(true);
    for (const id of ['B', 'U', 'C', 'D']) expect(all.filter((r) => r.batchId === id && r.state === 'succeeded')).toHaveLength(20);
    const withTask = all.filter((r) => r.taskId !== null);
    const stats = rig.sim.stats();
    expect(stats.createRejected429).toBe(0);
    expect(stats.peakCreateInWindow).toBeLessThanOrEqual(20);
    expect(stats.duplicatedInputs).toEqual([]);
    expect(stats.createAccepted).toBe(withTask.length);
    expect(all.filter((r) => r.state === 'cancelled').length + withTask.length).toBe(all.length);
  }, 240_000);

  it('a batch paused while one of its images waits at the send gate: that image is held again, nothing sent until the batch resumes', async () => {
    // 3 sends per 6 s (×10), one place held 10 s by another process's slow call: 2 images go, the third waits at the
    // gate until their places free 6 s later.
    rig = await startRig({ timeScale: 10, env: { KIE_CREATE_LIMIT: '3/6000ms' } });
    await rig.startWorker();
    await holdSendPlace(rig, 10_000);
    await enqueue(rig.rt, topazImages(rig, 3, 'gw'), { batchId: 'gw' });
    await waitFor(() => rig!.sim.stats().createAccepted >= 2, { timeoutMs: 20_000, what: '2 tasks created' });
    await waitFor(async () => (await rig!.rt.queues.submit.getJobCounts('active')).active === 1, { what: 'the third image running, at the gate' });
    await pauseBatch(rig.rt, 'gw');
    const creates = () => rig!.sim.stats().callsByPath['/api/v1/jobs/createTask'] ?? 0;
    const atPause = creates();
    expect(atPause).toBe(2);
    // Past the moment the third image passes the gate, and then some: it went back to its batch's held images.
    const firstCreateAt = Math.min(...rig.sim.tasks().map((t) => t.createdAt));
    await sleep(Math.max(0, firstCreateAt + 8000 - Date.now()));
    expect(creates()).toBe(atPause);
    expect((await rig.rt.queues.submit.getJobCounts('active')).active).toBe(0);
    expect(await fairShareOf(rig.rt).heldCount('gw')).toBe(1);
    expect((await rig.rt.store.getSummary('gw'))!.counts).toMatchObject({ waiting: 1, submitting: 0, failed: 0 });
    await resumeBatch(rig.rt, 'gw');
    const summary = await waitForBatch(rig.rt, 'gw', 60_000);
    expect(summary.counts.succeeded).toBe(3);
    expect(rig.sim.stats().createAccepted).toBe(3);
    expect(rig.sim.stats().duplicatedInputs).toEqual([]);
  });
});
