import type { Job } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import type { PollJobData, SubmitJobData } from '../../src/queue/job-data.js';
import type { Runtime } from '../../src/runtime.js';
import { waitFor } from '../helpers/redis.js';
import {
  HMAC,
  imageId,
  metricValue,
  parkedPollJob,
  pollJobId,
  postCallback,
  startBench,
  submitData,
  submitJobId,
  successBody,
  takeJob,
  type Bench,
} from './server-fixtures.js';

const outcome = (o: string) => `upscale_callbacks_total{outcome="${o}"}`;

/** The job's state and data as stored now (read through the runtime's queues, not a worker's copy). */
async function snapshot(rt: Runtime, job: Job | undefined) {
  if (!job) return null;
  const lane = job.queueName as 'submit' | 'poll';
  const fresh = await rt.queues[lane].getJob(job.id as string);
  return fresh ? { state: await fresh.getState(), data: fresh.data as unknown } : null;
}

describe('callback receiver (signed, HMAC key set)', () => {
  let b: Bench;
  afterEach(async () => b?.close());

  const setup = async () => {
    b = await startBench({ KIE_WEBHOOK_HMAC_KEY: HMAC });
    const jobId = imageId(1);
    const job = await parkedPollJob(b.rt, jobId, 'task-1');
    return { jobId, job, id: submitJobId(jobId, 0), before: await snapshot(b.rt, job) };
  };

  it('a valid callback promotes the parked poll job and changes nothing else', async () => {
    const { job, id, before } = await setup();
    expect(before?.state).toBe('delayed');
    const res = await postCallback(b.app, { id, taskId: 'task-1', hmacKey: HMAC });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ code: 200, msg: 'success' });
    expect(await snapshot(b.rt, job)).toEqual({ state: 'waiting', data: before?.data });
    expect(await metricValue(b.app, outcome('promoted'))).toBe(1);
  });

  it('accepts data.task_id as well as data.taskId', async () => {
    const { job, id, before } = await setup();
    const res = await postCallback(b.app, {
      id,
      taskId: 'task-1',
      hmacKey: HMAC,
      body: successBody('task-1', 'task_id'),
    });
    expect(res.statusCode).toBe(200);
    expect(await snapshot(b.rt, job)).toEqual({ state: 'waiting', data: before?.data });
  });

  it('a duplicate is answered 200 and changes nothing', async () => {
    const { job, id, before } = await setup();
    expect((await postCallback(b.app, { id, taskId: 'task-1', hmacKey: HMAC })).statusCode).toBe(200);
    const afterFirst = await snapshot(b.rt, job);
    const second = await postCallback(b.app, { id, taskId: 'task-1', hmacKey: HMAC });
    expect(second.statusCode).toBe(200);
    expect(second.json()).toEqual({ code: 200, msg: 'success' });
    expect(await snapshot(b.rt, job)).toEqual(afterFirst);
    expect(afterFirst).toEqual({ state: 'waiting', data: before?.data });
    expect(await metricValue(b.app, outcome('promoted'))).toBe(1);
    expect(await metricValue(b.app, outcome('duplicate'))).toBe(1);
  });

  it.each([
    ['a wrong token', { token: 'A'.repeat(32) }, 'rejected_token'],
    ['a missing token', { token: null }, 'rejected_token'],
    ['a token of another job', { tokenOf: imageId(2) }, 'rejected_token'],
    ['a wrong signature', { signature: 'bm90IHRoZSBzaWduYXR1cmU=' }, 'rejected_signature'],
    ['no signature headers', { unsigned: true }, 'rejected_signature'],
    ['a replayed callback (timestamp 10 min old)', { age: 600 }, 'rejected_signature'],
    ['a timestamp 10 min in the future', { age: -600 }, 'rejected_signature'],
  ] as const)('%s is refused with 401 and the job stays parked', async (_name, how, counted) => {
    const { job, id, before } = await setup();
    const opts = how as {
      token?: string | null;
      tokenOf?: string;
      signature?: string;
      unsigned?: boolean;
      age?: number;
    };
    let token = opts.token;
    if (opts.tokenOf) {
      const other = await postCallback(b.app, { id: opts.tokenOf, taskId: 'x', token: null }); // sanity: refused
      expect(other.statusCode).toBe(401);
      const { callbackToken } = await import('../../src/queue/callback-token.js');
      token = callbackToken('callback-secret-for-tests', opts.tokenOf);
    }
    const res = await postCallback(b.app, {
      id,
      taskId: 'task-1',
      ...(token !== undefined ? { token } : {}),
      ...(opts.unsigned ? {} : { hmacKey: HMAC }),
      ...(opts.signature ? { signature: opts.signature } : {}),
      ...(opts.age !== undefined ? { timestamp: Math.floor(Date.now() / 1000) - opts.age } : {}),
    });
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({ code: 401 });
    expect(await snapshot(b.rt, job)).toEqual(before);
    expect(await metricValue(b.app, outcome(counted))).toBeGreaterThanOrEqual(1);
    expect(await metricValue(b.app, outcome('promoted'))).toBe(0);
  });

  it('an oversized body gets 413 and the job stays parked', async () => {
    const { job, id, before } = await setup();
    const body = JSON.stringify({ code: 200, data: { taskId: 'task-1', pad: 'x'.repeat(70_000) } });
    const res = await postCallback(b.app, { id, taskId: 'task-1', hmacKey: HMAC, body });
    expect(res.statusCode).toBe(413);
    expect(await snapshot(b.rt, job)).toEqual(before);
    expect(await metricValue(b.app, outcome('too_large'))).toBe(1);
  });

  it.each([
    ['malformed JSON', '{"code":200,"data":{"taskId":"task-1"'],
    ['an empty body', ''],
    ['no taskId', '{"code":200,"data":{"state":"success"}}'],
    ['the docs` example with a trailing comma', '{"code":200,"data":{"taskId":"task-1","state":"success",},"msg":"Playground task completed successfully."}'],
  ])('%s with a valid token and a signature over the job`s own taskId promotes the job', async (_name, body) => {
    const { job, id, before } = await setup();
    const res = await postCallback(b.app, { id, taskId: 'task-1', hmacKey: HMAC, body });
    expect(res.statusCode).toBe(200);
    expect(await snapshot(b.rt, job)).toEqual({ state: 'waiting', data: before?.data });
    expect(await metricValue(b.app, outcome('unreadable_body'))).toBe(1);
    expect(await metricValue(b.app, outcome('promoted'))).toBe(1);
  });

  it('an unreadable body signed over another taskId is refused and the job stays parked', async () => {
    const { job, id, before } = await setup();
    const res = await postCallback(b.app, { id, taskId: 'task-OTHER', hmacKey: HMAC, body: 'not json' });
    expect(res.statusCode).toBe(401);
    expect(await snapshot(b.rt, job)).toEqual(before);
  });

  it('takes taskId at the root (kie`s signed example: taskId at the root, task_id in data)', async () => {
    const { job, id, before } = await setup();
    const body = JSON.stringify({ taskId: 'task-1', code: 200, msg: 'Success', data: { callbackType: 'task_completed' } });
    const res = await postCallback(b.app, { id, taskId: 'task-1', hmacKey: HMAC, body });
    expect(res.statusCode).toBe(200);
    expect(await snapshot(b.rt, job)).toEqual({ state: 'waiting', data: before?.data });
  });

  it('a callback before its poll job exists is remembered in Redis for at least POLL_DEADLINE', async () => {
    b = await startBench({ KIE_WEBHOOK_HMAC_KEY: HMAC });
    const jobId = imageId(7);
    const id = submitJobId(jobId, 0);
    // The submit job is running (createTask in flight): no taskId, no poll job yet.
    await b.rt.queues.submit.add('submit', submitData(jobId), { jobId: id });
    const taken = await takeJob(b.rt, 'submit');
    const res = await postCallback(b.app, { id, taskId: 'task-7', hmacKey: HMAC }).finally(() => taken.release());
    expect(res.statusCode).toBe(200);
    const key = b.rt.store.keys.earlyCallback(id);
    expect(JSON.parse((await b.rt.redis.get(key)) as string)).toMatchObject({ taskId: 'task-7' });
    expect(await b.rt.redis.pttl(key)).toBeGreaterThanOrEqual(b.rt.config.pollDeadlineMs);
  });

  it('a callback for another task of the job (stale generation) is ignored', async () => {
    const { job, id, before } = await setup();
    const res = await postCallback(b.app, { id, taskId: 'task-OLD', hmacKey: HMAC });
    expect(res.statusCode).toBe(200);
    expect(await snapshot(b.rt, job)).toEqual(before);
    expect(await metricValue(b.app, outcome('stale'))).toBe(1);
  });

  it('a callback for an id with no job at all is answered 200 and counted unknown', async () => {
    b = await startBench({ KIE_WEBHOOK_HMAC_KEY: HMAC });
    const res = await postCallback(b.app, { id: submitJobId(imageId(9), 3), taskId: 't9', hmacKey: HMAC });
    expect(res.statusCode).toBe(200);
    expect(await metricValue(b.app, outcome('unknown'))).toBe(1);
  });
});

describe('callback receiver: lost taskId re-attach and running jobs', () => {
  let b: Bench;
  afterEach(async () => b?.close());

  it('without an HMAC key, an unreadable body with a valid URL token still promotes the parked poll job (the result comes from recordInfo)', async () => {
    b = await startBench();
    const jobId = imageId(9);
    const job = await parkedPollJob(b.rt, jobId, 'task-9');
    const before = await snapshot(b.rt, job);
    expect(before?.state).toBe('delayed');
    const res = await postCallback(b.app, { id: submitJobId(jobId, 0), taskId: 'task-9', body: '{"code":200,"data":{"taskId":"task-9",' });
    expect(res.statusCode).toBe(200);
    expect(await snapshot(b.rt, job)).toEqual({ state: 'waiting', data: before?.data });
    expect(await metricValue(b.app, outcome('unreadable_body'))).toBe(1);
    expect(await metricValue(b.app, outcome('promoted'))).toBe(1);
  });

  it('re-attaches the taskId to a parked submit job without one, clears sendingAt, and promotes it', async () => {
    b = await startBench();
    const jobId = imageId(3);
    const id = submitJobId(jobId, 0);
    const data = submitData(jobId, { sendingAt: Date.now() - 1000, retries: 1 });
    const job = await b.rt.queues.submit.add('submit', data, { jobId: id, delay: 60_000 });
    const t0 = Date.now();
    const res = await postCallback(b.app, { id, taskId: 'task-lost' }); // unsigned: no HMAC key configured
    expect(res.statusCode).toBe(200);
    const after = await snapshot(b.rt, job);
    expect(after?.state).toBe('waiting');
    const { sendingAt: _s, ...rest } = data;
    const got = after?.data as SubmitJobData;
    expect(got).toEqual({ ...rest, taskId: 'task-lost', submittedAt: got.submittedAt });
    expect(got.submittedAt).toBeGreaterThanOrEqual(t0);
    expect(got.submittedAt).toBeLessThanOrEqual(Date.now());
    expect(await b.rt.queues.poll.getJob(pollJobId(jobId, 0))).toBeUndefined();
    expect(await metricValue(b.app, outcome('reattached'))).toBe(1);
  });

  it('re-attaches to a waiting submit job without promoting anything', async () => {
    b = await startBench();
    const jobId = imageId(4);
    const id = submitJobId(jobId, 1);
    const job = await b.rt.queues.submit.add('submit', submitData(jobId, {}, 1), { jobId: id });
    expect((await postCallback(b.app, { id, taskId: 'task-g1' })).statusCode).toBe(200);
    const after = await snapshot(b.rt, job);
    expect(after?.state).toBe('waiting');
    expect(after?.data).toMatchObject({ generation: 1, taskId: 'task-g1' });
  });

  it('leaves an active submit job alone while it runs, and re-attaches once it is parked for a retry', async () => {
    b = await startBench({}, { callbackOptions: { followUps: { intervalMs: 50, windowMs: 5000 } } });
    const jobId = imageId(5);
    const id = submitJobId(jobId, 0);
    const data = submitData(jobId, { sendingAt: Date.now() });
    await b.rt.queues.submit.add('submit', data, { jobId: id });
    const taken = await takeJob<SubmitJobData>(b.rt, 'submit');
    try {
      expect(taken.job.id).toBe(id);
      const res = await postCallback(b.app, { id, taskId: 'task-active' });
      expect(res.statusCode).toBe(200);
      await new Promise((r) => setTimeout(r, 300)); // several follow-up tries while it runs
      expect(await snapshot(b.rt, taken.job)).toEqual({ state: 'active', data });
      // The running createTask timed out: the lane parks the job for a retry, without a taskId.
      await taken.job.moveToDelayed(Date.now() + 60_000, taken.token);
      const after = await waitFor(
        async () => {
          const s = await snapshot(b.rt, taken.job);
          return (s?.data as SubmitJobData | undefined)?.taskId ? s : null;
        },
        { timeoutMs: 5000, what: 'the follow-up to re-attach' },
      );
      expect(after.state).toBe('waiting');
      expect(after.data).toMatchObject({ taskId: 'task-active' });
      expect(after.data).not.toHaveProperty('sendingAt');
      expect(await metricValue(b.app, outcome('reattached'))).toBe(1);
    } finally {
      await taken.release();
    }
  });

  it('never overwrites a checkpoint: a submit job with another taskId is left as it is (stale)', async () => {
    b = await startBench();
    const jobId = imageId(6);
    const id = submitJobId(jobId, 0);
    const data = submitData(jobId, { taskId: 'task-real', submittedAt: 1000 });
    const job = await b.rt.queues.submit.add('submit', data, { jobId: id, delay: 60_000 });
    expect((await postCallback(b.app, { id, taskId: 'task-other' })).statusCode).toBe(200);
    expect(await snapshot(b.rt, job)).toEqual({ state: 'delayed', data });
    expect(await metricValue(b.app, outcome('stale'))).toBe(1);
  });

  it('promotes a poll job that was being checked as soon as the check parks it', async () => {
    b = await startBench({}, { callbackOptions: { followUps: { intervalMs: 50, windowMs: 5000 } } });
    const jobId = imageId(7);
    await b.rt.queues.poll.add('poll', (await import('./server-fixtures.js')).pollData(jobId, 'task-7'), {
      jobId: pollJobId(jobId, 0),
    });
    const taken = await takeJob<PollJobData>(b.rt, 'poll');
    try {
      expect((await postCallback(b.app, { id: submitJobId(jobId, 0), taskId: 'task-7' })).statusCode).toBe(
        200,
      );
      expect((await snapshot(b.rt, taken.job))?.state).toBe('active');
      await taken.job.moveToDelayed(Date.now() + 60_000, taken.token); // the check saw "generating" and parked it
      await waitFor(async () => (await snapshot(b.rt, taken.job))?.state === 'waiting', {
        timeoutMs: 5000,
        what: 'promotion',
      });
      expect(await metricValue(b.app, outcome('promoted'))).toBe(1);
    } finally {
      await taken.release();
    }
  });

  it('never logs the token', async () => {
    b = await startBench();
    const jobId = imageId(8);
    await parkedPollJob(b.rt, jobId, 'task-8');
    const { callbackToken } = await import('../../src/queue/callback-token.js');
    const token = callbackToken('callback-secret-for-tests', submitJobId(jobId, 0));
    await postCallback(b.app, { id: submitJobId(jobId, 0), taskId: 'task-8' });
    await postCallback(b.app, {
      id: submitJobId(jobId, 0),
      taskId: 'task-8',
      token: token.slice(0, 31) + 'Z',
    });
    const text = b.logs.text();
    expect(text).toContain('/callbacks/kie/');
    expect(text).toContain('t=[redacted]');
    expect(text).not.toContain(token);
    expect(text).not.toContain(token.slice(0, 31));
  });
});
