import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { pause, resume } from '../../src/control/index.js';
import { laneStatus } from '../../src/queue/lane-status.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { getRunway, takeFromRunway } from '../../src/worker/runway.js';
import { deletePrefix, freshPrefix, testRedisUrl } from '../helpers/redis.js';

describe('pause, resume and lane status', () => {
  let rt: Runtime;
  let prefix: string;

  afterEach(async () => {
    await rt.close();
    await deletePrefix(testRedisUrl(), prefix);
  });

  function make(): Runtime {
    prefix = freshPrefix('pause');
    rt = createRuntime(loadConfig({}, { REDIS_URL: testRedisUrl(), UPSCALE_PREFIX: prefix, LOG_LEVEL: 'silent' }));
    return rt;
  }

  it('pauses only submission by default and records a manual reason', async () => {
    make();
    const result = await pause(rt, { now: 1000 });
    expect(result).toEqual([{ lane: 'submit', alreadyPaused: false, reason: { code: 'manual', message: 'paused by upscale pause', at: 1000 } }]);
    expect(await rt.queues.submit.isPaused()).toBe(true);
    expect(await rt.queues.poll.isPaused()).toBe(false);
    expect(JSON.parse((await rt.redis.get(rt.store.keys.pauseReason('submit')))!)).toEqual({ code: 'manual', message: 'paused by upscale pause', at: 1000 });

    // Pausing again keeps the first reason.
    const again = await pause(rt, { now: 2000 });
    expect(again[0]).toMatchObject({ alreadyPaused: true, reason: { at: 1000 } });
  });

  it('keeps a 402 reason when a paused lane is paused again, and resume reports and clears it', async () => {
    make();
    const credits = { code: '402', message: 'kie.ai reports insufficient credits (402: no credits). Add credits, then run `upscale resume`.', at: 5 };
    await rt.redis.set(rt.store.keys.pauseReason('submit'), JSON.stringify(credits));
    await rt.queues.submit.pause();
    expect((await pause(rt))[0]).toEqual({ lane: 'submit', alreadyPaused: true, reason: credits });
    await pause(rt, { lanes: ['download'], now: 7 });
    await rt.queues.submit.add('submit', { x: 1 }, { jobId: 'j1' });

    const lanes = await laneStatus(rt);
    expect(lanes.submit).toMatchObject({ paused: true, reason: credits });
    expect(lanes.submit.counts).toMatchObject({ waiting: 1, active: 0, delayed: 0, completed: 0, failed: 0 });
    expect(lanes.poll).toEqual({ paused: false, reason: null, slowedDown: false, counts: expect.objectContaining({ waiting: 0 }) });
    await rt.redis.set(rt.store.keys.slowdown('poll'), '1', 'PX', 60_000);
    expect((await laneStatus(rt)).poll.slowedDown).toBe(true);
    expect(lanes.download).toMatchObject({ paused: true, reason: { code: 'manual', at: 7 } });

    const resumed = await resume(rt);
    expect(resumed).toEqual({
      resumed: [
        { lane: 'submit', reason: credits, balanceSetAside: true },
        { lane: 'download', reason: { code: 'manual', message: 'paused by upscale pause', at: 7 } },
      ],
      notPaused: ['poll'],
    });
    for (const q of Object.values(rt.queues)) expect(await q.isPaused()).toBe(false);
    expect(await rt.redis.exists(rt.store.keys.pauseReason('submit'), rt.store.keys.pauseReason('download'))).toBe(0);
    expect((await laneStatus(rt)).submit).toMatchObject({ paused: false, reason: null, counts: { waiting: 1 } });
    expect(await resume(rt)).toEqual({ resumed: [], notPaused: ['submit', 'poll', 'download'] });
  });

  it('resuming a credit pause sets the last balance read aside, so the stale read does not pause the lane again at the next image; other pauses keep it', async () => {
    make();
    // A trial: 402, credits added, `upscale resume`, and the runway paused again 0.6 s later on the read of 5 credits.
    const shortRead = async () => {
      await rt.redis.del(rt.store.keys.creditBalance, `${rt.store.keys.creditBalance}:inflight`);
      await rt.redis.hset(rt.store.keys.creditBalance, 'balance', '5', 'at', String(Date.now()), 'spent', '0');
    };
    for (const code of ['credits', '402']) {
      await shortRead();
      expect(await takeFromRunway(rt, 'img-1', 10)).toEqual({ ok: false, left: 5 });
      await rt.redis.set(rt.store.keys.pauseReason('submit'), JSON.stringify({ code, message: `paused (${code})`, at: 1 }));
      await rt.queues.submit.pause();
      const r = await resume(rt, { lanes: ['submit'] });
      expect(r.resumed).toEqual([{ lane: 'submit', reason: { code, message: `paused (${code})`, at: 1 }, balanceSetAside: true }]);
      expect(await getRunway(rt)).toBeNull();
      expect(await takeFromRunway(rt, 'img-1', 10)).toEqual({ ok: true });
    }
    // A manual pause (or any other) is not about credits: the read stays and still decides.
    await shortRead();
    await pause(rt);
    const manual = await resume(rt, { lanes: ['submit'] });
    expect(manual.resumed[0]?.balanceSetAside).toBeUndefined();
    expect(await getRunway(rt)).toMatchObject({ balance: 5 });
    expect(await takeFromRunway(rt, 'img-2', 10)).toEqual({ ok: false, left: 5 });
  });

  it('resumes only the lanes asked for', async () => {
    make();
    await pause(rt, { lanes: ['submit', 'poll'] });
    expect(await resume(rt, { lanes: ['poll'] })).toMatchObject({ resumed: [{ lane: 'poll' }], notPaused: [] });
    expect(await rt.queues.submit.isPaused()).toBe(true);
    expect(await rt.queues.poll.isPaused()).toBe(false);
  });
});
