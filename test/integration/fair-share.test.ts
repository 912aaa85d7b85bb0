/**
 * The batch scheduler on real Redis and BullMQ, without workers: jobs are held, `admit` promotes them into the
 * submit queue's wait list, and the test plays the workers by taking the admitted jobs out of the wait list. The
 * sequence of admitted ids is the schedule.
 */
import { Job } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { cancel, pauseBatch, resumeBatch, setBatchPriority } from '../../src/control/index.js';
import { fairShareOf, HOLD_MS, STALE_ADMIT_MS, type FairShare, type Priority } from '../../src/queue/fair-share.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { deletePrefix, freshPrefix, testRedisUrl } from '../helpers/redis.js';
import { startRedisServer } from '../helpers/redis-server.js';

describe('batch scheduler (fair share, priority, batch gates)', () => {
  let rt: Runtime;
  let prefix: string;
  let fair: FairShare;

  afterEach(async () => {
    await rt.close();
    await deletePrefix(testRedisUrl(), prefix);
  });

  function make(): void {
    prefix = freshPrefix('fair');
    rt = createRuntime(loadConfig({}, { REDIS_URL: testRedisUrl(), UPSCALE_PREFIX: prefix, LOG_LEVEL: 'silent' }));
    fair = fairShareOf(rt);
  }

  /** Creates a batch of `n` images (records and held submit jobs with ids `<batch>-<i>`). */
  async function batch(batchId: string, n: number, priority?: Priority): Promise<void> {
    const ids = Array.from({ length: n }, (_, i) => `${batchId}-${i}`);
    for (let i = 0; i < n; i += 5000) {
      const chunk = ids.slice(i, i + 5000);
      await rt.store.createRecords(
        batchId,
        chunk.map((jobId) => ({ jobId, input: `https://example.com/${jobId}.png`, model: 'topaz/image-upscale' as const, factor: '2' as const, line: 1 })),
      );
      if (priority && i === 0) await fair.setPriority(batchId, priority);
      await fair.holdJobs(
        batchId,
        chunk.map((jobId) => ({ name: 'submit', data: { jobId, batchId }, opts: { jobId } })),
      );
    }
  }

  /** Admits one job at a time, `count` times, taking each out of the wait list as a worker would. */
  async function take(count: number): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < count; i++) {
      const ids = await fair.admit(1);
      if (ids.length === 0) break;
      out.push(...ids);
      await rt.redis.del(rt.queues.submit.toKey('wait'));
    }
    return out;
  }

  const batchOf = (id: string) => id.slice(0, id.lastIndexOf('-'));
  const countOf = (ids: string[], b: string) => ids.filter((id) => batchOf(id) === b).length;

  it('holds enqueued jobs in BullMQ (delayed a year) and admits them oldest first', async () => {
    make();
    await batch('A', 5);
    const counts = await rt.queues.submit.getJobCounts('waiting', 'delayed');
    expect(counts).toEqual({ waiting: 0, delayed: 5 });
    const job = await rt.queues.submit.getJob('A-0');
    expect(job!.delay).toBe(HOLD_MS);
    expect(await take(10)).toEqual(['A-0', 'A-1', 'A-2', 'A-3', 'A-4']);
  });

  it('shares the budget round-robin: a small batch behind a large one gets every other admission', async () => {
    make();
    await batch('A', 200);
    expect(await take(10)).toHaveLength(10); // A runs alone for a while
    await batch('B', 20);
    const next = await take(40);
    expect(countOf(next, 'B')).toBe(20);
    // Interleaved, not after A: B's 20th image is among the first 41 admissions after it arrived.
    expect(next.map(batchOf).join('')).toMatch(/^(AB|BA){20}$/);
    // B's images in their own order.
    expect(next.filter((id) => batchOf(id) === 'B')).toEqual(Array.from({ length: 20 }, (_, i) => `B-${i}`));
  });

  it('weighs high : normal : low as 4 : 2 : 1, and urgent goes first outright', async () => {
    make();
    await batch('H', 400, 'high');
    await batch('N', 400, 'normal');
    await batch('L', 400, 'low');
    const ids = await take(700);
    expect([countOf(ids, 'H'), countOf(ids, 'N'), countOf(ids, 'L')]).toEqual([400, 200, 100]);
    await batch('U', 30, 'urgent');
    const next = await take(30);
    expect(countOf(next, 'U')).toBe(30);
  });

  it('changes a priority later (upscale priority), from the next admission', async () => {
    make();
    await batch('A', 100);
    await batch('B', 100);
    const before = await take(20);
    expect([countOf(before, 'A'), countOf(before, 'B')]).toEqual([10, 10]);
    expect(await setBatchPriority(rt, 'B', 'high')).toMatchObject({ before: 'normal', priority: 'high' });
    await rt.redis.del(rt.queues.submit.toKey('wait')); // setBatchPriority admitted the next ones
    const after = await take(30);
    expect(countOf(after, 'B')).toBeGreaterThanOrEqual(19);
    expect(countOf(after, 'B')).toBeLessThanOrEqual(21);
    expect((await rt.store.getSummary('B'))!.priority).toBe('high');
    await expect(setBatchPriority(rt, 'nope', 'high')).rejects.toThrow(/no batch named nope/);
  });

  it('a paused batch admits nothing and the others take every admission; resume continues where it was', async () => {
    make();
    await batch('A', 100);
    await batch('B', 30);
    await batch('C', 30);
    await take(6);
    const paused = await pauseBatch(rt, 'A', { now: 1234 });
    expect(paused).toMatchObject({ alreadyPaused: false, gate: { state: 'paused', at: 1234 } });
    expect((await pauseBatch(rt, 'A', { now: 9999 })).alreadyPaused).toBe(true);
    const summary = await rt.store.getSummary('A');
    expect(summary!.gate).toMatchObject({ state: 'paused', at: 1234 });
    await rt.redis.del(rt.queues.submit.toKey('wait'));
    const during = await take(100);
    expect(countOf(during, 'A')).toBe(0);
    expect(countOf(during, 'B') + countOf(during, 'C')).toBe(56);
    expect(await fair.heldCount('A')).toBe(98);
    const resumed = await resumeBatch(rt, 'A');
    expect(resumed.was).toMatchObject({ state: 'paused', at: 1234 });
    expect((await rt.store.getSummary('A'))!.gate).toBeNull();
    await rt.redis.del(rt.queues.submit.toKey('wait'));
    const after = await take(200);
    expect(countOf(after, 'A')).toBe(after.length);
    // Resuming a batch that is not paused says so.
    expect((await resumeBatch(rt, 'A')).was).toBeNull();
  });

  it('holds again, first in its batch, a job admitted before its batch was paused', async () => {
    make();
    await batch('A', 3);
    const [first] = await fair.admit(1);
    expect(first).toBe('A-0');
    await pauseBatch(rt, 'A');
    // A worker took A-0: it finds the gate closed and holds it again.
    const worker = (await rt.queues.submit.getJob('A-0'))!;
    const token = 'tok';
    await rt.redis.del(rt.queues.submit.toKey('wait'));
    await rt.redis.lpush(rt.queues.submit.toKey('active'), 'A-0');
    await rt.redis.set(`${rt.queues.submit.toKey('A-0')}:lock`, token);
    await fair.rehold(worker, 'A', token);
    expect(await worker.getState()).toBe('delayed');
    await resumeBatch(rt, 'A'); // admits the lookahead (2) at once; workers take from the list's right end
    expect((await rt.redis.lrange(rt.queues.submit.toKey('wait'), 0, -1)).reverse()).toEqual(['A-0', 'A-1']);
    await rt.redis.del(rt.queues.submit.toKey('wait'));
    expect(await take(5)).toEqual(['A-2']);
  });

  it('puts images coming back (resubmission, retry) first in their batch, in the order they came back, before later arrivals', async () => {
    make();
    await batch('A', 6);
    expect(await take(2)).toEqual(['A-0', 'A-1']);
    // failed at kie (500) and come back as new generations, while 2 more images arrive after them.
    await fair.holdJobs('A', [{ name: 'submit', data: { jobId: 'A-0', batchId: 'A' }, opts: { jobId: 'A-0-g1' } }], 'first');
    await fair.holdJobs('A', [{ name: 'submit', data: { jobId: 'A-6', batchId: 'A' }, opts: { jobId: 'A-6' } }, { name: 'submit', data: { jobId: 'A-7', batchId: 'A' }, opts: { jobId: 'A-7' } }]);
    await fair.holdJobs('A', [{ name: 'submit', data: { jobId: 'A-1', batchId: 'A' }, opts: { jobId: 'A-1-g1' } }], 'first');
    expect(await take(3)).toEqual(['A-0-g1', 'A-1-g1', 'A-2']);
    // A job held again by a closing gate goes before even those.
    await fair.holdJobs('A', [{ name: 'submit', data: { jobId: 'A-2', batchId: 'A' }, opts: { jobId: 'A-2-g1' } }], 'first');
    await rt.queues.submit.add('submit', {}, { jobId: 'A-x', delay: HOLD_MS });
    await fair.index('A', ['A-x'], 'rehold');
    expect(await take(10)).toEqual(['A-x', 'A-2-g1', 'A-3', 'A-4', 'A-5', 'A-6', 'A-7']);
  });

  it('never promotes a job that left the held state (retry backoff, cancelled), and re-promotes ids a dead process left', async () => {
    make();
    await batch('A', 4);
    // A-0 waits out a retry backoff of 10 s: an index entry for it must not cut that short.
    const j0 = new Job(rt.queues.submit, 'submit', null, {}, 'A-0');
    await j0.promote();
    await rt.redis.del(rt.queues.submit.toKey('wait'));
    await rt.queues.submit.add('submit', {}, { jobId: 'A-retry', delay: 10_000 });
    await fair.index('A', ['A-retry'], 'rehold');
    // A process popped A-1 for admission and died before promoting it.
    await rt.redis.zrem(rt.store.keys.held('A'), 'A-1');
    await rt.redis.zadd(rt.store.keys.schedAdmitting, Date.now() - STALE_ADMIT_MS - 1000, 'A-1');
    const ids = await take(10);
    expect(ids).toEqual(['A-1', 'A-2', 'A-3']);
    expect(await (await rt.queues.submit.getJob('A-retry'))!.getState()).toBe('delayed');
    expect(await rt.redis.zcard(rt.store.keys.schedAdmitting)).toBe(0);
  });

  it('cancel removes held jobs and records them cancelled', async () => {
    make();
    await batch('A', 10);
    await batch('B', 2);
    const r = await cancel(rt, 'A');
    expect(r).toEqual({ cancelled: 10, inFlight: 0 });
    expect(await take(20)).toEqual(['B-0', 'B-1']);
  });

  // The benchmark (bench/scenarios/fair-share.ts) measures this at 100,000; 20,000 keeps the test quick. A private
  // redis-server, so its command counts are this test's alone.
  it('costs the same Redis commands per admission with 20,000 images held in one batch as with 20', async () => {
    const server = await startRedisServer();
    try {
      const costOf = async (bigSize: number): Promise<number> => {
        prefix = freshPrefix('fair');
        rt = createRuntime(loadConfig({}, { REDIS_URL: server.url, UPSCALE_PREFIX: prefix, LOG_LEVEL: 'silent' }));
        fair = fairShareOf(rt);
        try {
          await batch('BIG', bigSize);
          await batch('S', 5);
          const calls = async () => {
            const info = await rt.redis.info('commandstats');
            return [...info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)].filter((m) => m[1] !== 'info').reduce((n, m) => n + Number(m[2]), 0);
          };
          const c0 = await calls();
          const ids = await take(10);
          const c1 = await calls();
          expect(countOf(ids, 'S')).toBe(5);
          return c1 - c0;
        } finally {
          await rt.close();
          await deletePrefix(server.url, prefix);
        }
      };
      const small = await costOf(20);
      const big = await costOf(20_000);
      // Every command, inside scripts too (one admission script and one BullMQ promote per job, then a ZREM and the
      // test's own DEL, about 23 per admission): nothing grows with the held count (BullMQ's marker bookkeeping varies
      // by a command or two).
      expect(Math.abs(big - small)).toBeLessThanOrEqual(3);
      // afterEach closes a runtime: give it a fresh one on the shared test Redis.
      make();
    } finally {
      await server.destroy();
    }
  }, 180_000);
});
