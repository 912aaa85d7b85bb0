import { Worker, type Job } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { createRedis } from '../../src/queue/connection.js';
import { cancel, retry } from '../../src/control/index.js';
import { submitJobId } from '../../src/queue/identity.js';
import type { SubmitJobData } from '../../src/queue/job-data.js';
import { UnknownBatchError } from '../../src/results/export.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { deletePrefix, freshPrefix, testRedisUrl, waitFor } from '../helpers/redis.js';

const MODEL = 'topaz/image-upscale' as const;
const BATCH = 'b-control';
type Img = { jobId: string; input: string };
const id = (n: number) => n.toString(16).padStart(24, '0');

describe('retry and cancel', () => {
  let rt: Runtime;
  let prefix: string;
  const cleanups: (() => Promise<unknown>)[] = [];

  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    await rt.close();
    await deletePrefix(testRedisUrl(), prefix);
  });

  function make(): Runtime {
    prefix = freshPrefix('ctl');
    rt = createRuntime(loadConfig({}, { REDIS_URL: testRedisUrl(), UPSCALE_PREFIX: prefix, LOG_LEVEL: 'silent' }));
    return rt;
  }

  async function images(n: number) {
    const list = Array.from({ length: n }, (_, i) => ({ jobId: id(i + 1), input: `https://img.test/${i + 1}.png`, model: MODEL, factor: '2' as const }));
    await rt.store.createRecords(BATCH, list);
    return list;
  }

  function submitData(i: { jobId: string; input: string }, generation = 0, extra: Partial<SubmitJobData> = {}): SubmitJobData {
    return { jobId: i.jobId, batchId: BATCH, input: i.input, model: MODEL, factor: '2', generation, ...extra };
  }

  it('retries failed and timed-out images once, as a new generation with a fresh submit job', async () => {
    make();
    const imgs = await images(6);
    const [a, b, c, d, e] = [imgs[0]!, imgs[1]!, imgs[2]!, imgs[3]!, imgs[4]!];
    await rt.store.transition(BATCH, a.jobId, { state: 'failed', taskId: 't-a', failCode: '422', failMsg: 'bad', completedAt: 1, submittedAt: 1, creditsConsumed: 0 });
    await rt.store.transition(BATCH, b.jobId, { state: 'timed_out', taskId: 't-b', completedAt: 2, costTimeMs: 5 });
    await rt.store.transition(BATCH, c.jobId, { state: 'failed', generation: 1, failCode: '501', failMsg: 'gen failed' });
    await rt.store.transition(BATCH, d.jobId, { state: 'succeeded', taskId: 't-d', resultUrls: ['https://r/d.png'], creditsConsumed: 20 });
    await rt.store.transition(BATCH, e.jobId, { state: 'polling', taskId: 't-e' });
    // imgs[5] stays waiting

    expect(await retry(rt, BATCH)).toEqual({ retried: 3, skipped: 3 });

    const ra = await rt.store.getRecord(BATCH, a.jobId);
    expect(ra).toMatchObject({ state: 'waiting', generation: 1, taskId: null, resultUrls: [], failCode: null, failMsg: null, completedAt: null, submittedAt: null, creditsConsumed: null });
    expect(await rt.store.getRecord(BATCH, b.jobId)).toMatchObject({ state: 'waiting', generation: 1, costTimeMs: null });
    expect(await rt.store.getRecord(BATCH, c.jobId)).toMatchObject({ state: 'waiting', generation: 2 });
    expect((await rt.store.getRecord(BATCH, d.jobId))?.state).toBe('succeeded');

    const jobs = await rt.queues.submit.getJobs(['waiting', 'delayed', 'prioritized']);
    expect(jobs.map((j) => j.id).sort()).toEqual([submitJobId(a.jobId, 1), submitJobId(b.jobId, 1), submitJobId(c.jobId, 2)].sort());
    expect(submitJobId(a.jobId, 1)).toBe(`${a.jobId}-g1`);
    const ja = jobs.find((j) => j.id === `${a.jobId}-g1`) as Job<SubmitJobData>;
    expect(ja.data).toEqual(submitData(a, 1));

    const s = await rt.store.getSummary(BATCH);
    expect(s?.counts).toMatchObject({ waiting: 4, failed: 0, timed_out: 0, succeeded: 1, polling: 1 });
    expect(s?.creditsConsumed).toBe(20);

    expect(await retry(rt, BATCH)).toEqual({ retried: 0, skipped: 6 });
    expect(await rt.queues.submit.count()).toBe(3);
  });

  it('keeps the previous task (taskId, failCode, failMsg) of a retried image through a cancel before its new task', async () => {
    make();
    const [a] = await images(1);
    await rt.store.transition(BATCH, a!.jobId, { state: 'failed', taskId: 't-a', failCode: '500', failMsg: 'internal error', completedAt: 1, submittedAt: 1, $inc: { submitAttempts: 1 } });
    expect(await retry(rt, BATCH)).toEqual({ retried: 1, skipped: 0 });
    expect(await cancel(rt, BATCH)).toMatchObject({ cancelled: 1 });
    expect(await rt.store.getRecord(BATCH, a!.jobId)).toMatchObject({
      state: 'cancelled',
      taskId: null,
      failCode: null,
      submittedAt: null,
      submitAttempts: 1,
      generation: 1,
      lastTaskId: 't-a',
      lastFailCode: '500',
      lastFailMsg: 'internal error',
    });
  });

  it('rejects an unknown batch by name', async () => {
    make();
    await expect(retry(rt, 'nope')).rejects.toThrow(UnknownBatchError);
    await expect(cancel(rt, 'nope')).rejects.toThrow(/no batch named nope/);
  });

  it('cancels what has not reached kie.ai and leaves active and submitted work alone', async () => {
    make();
    const imgs = await images(7);
    const [held, waiting, checkpointed, polling, noJob, done, delayed] = imgs as Img[] as [Img, Img, Img, Img, Img, Img, Img];

    // A worker takes `held` and never finishes it: its job is active and locked.
    await rt.queues.submit.add('submit', submitData(held), { jobId: submitJobId(held.jobId, 0) });
    let started = false;
    const worker = new Worker<SubmitJobData>('submit', async () => {
      started = true;
      await new Promise(() => undefined);
    }, { connection: createRedis(testRedisUrl(), 'worker'), prefix, concurrency: 1 });
    cleanups.push(() => worker.close(true));
    await waitFor(() => started, { what: 'the worker to hold a job' });
    await rt.store.transition(BATCH, held.jobId, { state: 'submitting' });

    await rt.queues.submit.add('submit', submitData(waiting), { jobId: submitJobId(waiting.jobId, 0) });
    await rt.queues.submit.add('submit', submitData(checkpointed, 0, { taskId: 't-c', submittedAt: 1 }), { jobId: submitJobId(checkpointed.jobId, 0), delay: 60_000 });
    await rt.store.transition(BATCH, checkpointed.jobId, { state: 'submitting' });
    await rt.store.transition(BATCH, polling.jobId, { state: 'polling', taskId: 't-p' });
    await rt.store.transition(BATCH, done.jobId, { state: 'succeeded' });
    await rt.queues.submit.add('submit', submitData(delayed), { jobId: submitJobId(delayed.jobId, 0), delay: 60_000 });
    await rt.store.transition(BATCH, delayed.jobId, { state: 'submitting' });
    // `noJob` has a record but no job at all

    expect(await cancel(rt, BATCH, { now: 1234 })).toEqual({ cancelled: 3, inFlight: 3 });

    for (const img of [waiting, noJob, delayed]) {
      expect(await rt.store.getRecord(BATCH, img.jobId)).toMatchObject({ state: 'cancelled', completedAt: 1234 });
      expect(await rt.queues.submit.getJob(submitJobId(img.jobId, 0))).toBeUndefined();
    }
    expect((await rt.store.getRecord(BATCH, held.jobId))?.state).toBe('submitting');
    expect(await (await rt.queues.submit.getJob(held.jobId))?.isActive()).toBe(true);
    expect((await rt.store.getRecord(BATCH, checkpointed.jobId))?.state).toBe('submitting');
    expect(await rt.queues.submit.getJob(checkpointed.jobId)).toBeDefined();
    expect((await rt.store.getRecord(BATCH, polling.jobId))?.state).toBe('polling');
    expect((await rt.store.getRecord(BATCH, done.jobId))?.state).toBe('succeeded');
    expect((await rt.store.getSummary(BATCH))?.counts).toMatchObject({ cancelled: 3, submitting: 2, polling: 1, succeeded: 1, waiting: 0 });

    // Nothing more to cancel the second time; the in-flight ones are still counted.
    expect(await cancel(rt, BATCH)).toEqual({ cancelled: 0, inFlight: 3 });
  });
});
