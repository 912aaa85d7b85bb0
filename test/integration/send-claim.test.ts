/**
 * The send claim on a real Redis (src/worker/send-claim.ts): one script reads the job's lock, the batch's gate and
 * the submit lane's pause reason before it writes the `sendingAt` mark; a pause reason is handed to the caller's
 * `mayPass` and nothing is written unless it lets the job through.
 */
import type { Job } from 'bullmq';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import type { SubmitJobData } from '../../src/queue/job-data.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { claimSend } from '../../src/worker/send-claim.js';
import { deletePrefix, freshPrefix, testRedisUrl } from '../helpers/redis.js';

const TOKEN = 'run-token-1';
const REASON = JSON.stringify({ code: '402', message: 'credits ran out', at: 1, probe: { running: true } });

let rt: Runtime;
let prefix: string;
let job: Job<SubmitJobData>;
let data: SubmitJobData;

beforeEach(async () => {
  prefix = freshPrefix('claim');
  rt = createRuntime(loadConfig({}, { REDIS_URL: testRedisUrl(), UPSCALE_PREFIX: prefix, LOG_LEVEL: 'silent' }));
  const base: SubmitJobData = { jobId: 'a'.repeat(24), batchId: 'b1', input: 'https://images.example.com/a.png', model: 'topaz/image-upscale', factor: '2', generation: 0 };
  job = (await rt.queues.submit.add('submit', base, { jobId: 'claim-1' })) as Job<SubmitJobData>;
  await rt.redis.set(`${job.queueQualifiedName}:${job.id}:lock`, TOKEN);
  data = { ...base, sendingAt: 1_700_000_000_000, attempts: 1 };
});
afterEach(async () => {
  await rt.close();
  await deletePrefix(testRedisUrl(), prefix);
});

/** The job's data as stored. */
async function stored(): Promise<SubmitJobData> {
  return JSON.parse((await rt.redis.hget(`${job.queueQualifiedName}:${job.id}`, 'data')) as string) as SubmitJobData;
}

/** A `mayPass` that answers `answer` and records what it was given. */
function judge(answer: boolean) {
  const seen: string[] = [];
  return {
    seen,
    mayPass: (reason: string) => {
      seen.push(reason);
      return Promise.resolve(answer);
    },
  };
}

describe('send claim', () => {
  it('nothing paused, lock held: the mark is written and mayPass is not asked', async () => {
    const j = judge(false);
    expect(await claimSend(rt, job, TOKEN, data, j.mayPass)).toBe('sent');
    expect((await stored()).sendingAt).toBe(data.sendingAt);
    expect(j.seen).toEqual([]);
  });

  it('another run holds the lock: lost, nothing written, whatever the pauses', async () => {
    await rt.redis.set(rt.store.keys.pauseReason('submit'), REASON);
    const j = judge(true);
    expect(await claimSend(rt, job, 'another-token', data, j.mayPass)).toBe('lost');
    expect((await stored()).sendingAt).toBeUndefined();
    expect(j.seen).toEqual([]);
  });

  it("the batch's gate closed: gated, nothing written", async () => {
    await rt.redis.hset(rt.store.keys.batch('b1'), 'gate', 'paused');
    expect(await claimSend(rt, job, TOKEN, data, judge(true).mayPass)).toBe('gated');
    expect((await stored()).sendingAt).toBeUndefined();
  });

  it('the lane has a pause reason and mayPass says no: paused, nothing written; mayPass got the stored reason', async () => {
    await rt.redis.set(rt.store.keys.pauseReason('submit'), REASON);
    const j = judge(false);
    expect(await claimSend(rt, job, TOKEN, data, j.mayPass)).toBe('paused');
    expect((await stored()).sendingAt).toBeUndefined();
    expect(j.seen).toEqual([REASON]);
  });

  it('the lane has a pause reason and mayPass lets this job through (the probe): sent, asked once', async () => {
    await rt.redis.set(rt.store.keys.pauseReason('submit'), REASON);
    const j = judge(true);
    expect(await claimSend(rt, job, TOKEN, data, j.mayPass)).toBe('sent');
    expect((await stored()).sendingAt).toBe(data.sendingAt);
    expect(j.seen).toEqual([REASON]);
  });

  it('the lock is lost while mayPass decides: lost, nothing written', async () => {
    await rt.redis.set(rt.store.keys.pauseReason('submit'), REASON);
    const mayPass = async () => {
      await rt.redis.set(`${job.queueQualifiedName}:${job.id}:lock`, 'taken-over');
      return true;
    };
    expect(await claimSend(rt, job, TOKEN, data, mayPass)).toBe('lost');
    expect((await stored()).sendingAt).toBeUndefined();
  });

  it('without a token (outside a BullMQ worker) the same pauses hold, and the lock is not read', async () => {
    await rt.redis.set(rt.store.keys.pauseReason('submit'), REASON);
    expect(await claimSend(rt, job, undefined, data, judge(false).mayPass)).toBe('paused');
    expect((await stored()).sendingAt).toBeUndefined();
    expect(await claimSend(rt, job, undefined, data, judge(true).mayPass)).toBe('sent');
    expect((await stored()).sendingAt).toBe(data.sendingAt);
    await rt.redis.hset(rt.store.keys.batch('b1'), 'gate', 'paused');
    expect(await claimSend(rt, job, undefined, { ...data, attempts: 2 }, judge(true).mayPass)).toBe('gated');
    expect((await stored()).attempts).toBe(1);
  });
});
