import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RECORD_FIELDS } from '../../src/results/record.js';
import { ResultStore } from '../../src/results/store.js';
import { deletePrefix, freshPrefix, testRedisUrl } from '../helpers/redis.js';

const TOPAZ = 'topaz/image-upscale' as const;

describe('ResultStore', () => {
  let redis: Redis;
  let prefix: string;
  let store: ResultStore;

  beforeAll(() => {
    redis = new Redis(testRedisUrl());
  });
  afterAll(() => redis.disconnect());
  afterEach(async () => {
    await deletePrefix(testRedisUrl(), prefix);
  });

  function make(retention = 60_000) {
    prefix = freshPrefix();
    store = new ResultStore(redis, prefix, retention);
    return store;
  }

  it('creates records once and reports what already existed', async () => {
    make();
    const images = [
      { jobId: 'a'.repeat(24), input: 'https://x/1.png', model: TOPAZ, factor: '2' as const },
      { jobId: 'b'.repeat(24), input: 'https://x/2.png', model: TOPAZ, factor: '4' as const },
    ];
    expect(await store.createRecords('b1', images)).toEqual(['created', 'created']);
    await store.transition('b1', 'b'.repeat(24), { state: 'submitting' });
    expect(await store.createRecords('b1', images)).toEqual(['waiting', 'exists']);
    const s = await store.getSummary('b1');
    expect(s?.total).toBe(2);
    expect(s?.counts).toMatchObject({ waiting: 1, submitting: 1, succeeded: 0 });
    expect(await redis.pttl(store.keys.records('b1'))).toBeGreaterThan(50_000);
  });

  it('moves counts with each state change, adds credits and counters, and honours `from`', async () => {
    make();
    const id = 'c'.repeat(24);
    await store.createRecords('b2', [{ jobId: id, input: 'u', model: TOPAZ, factor: '2' }]);
    await store.transition('b2', id, { state: 'submitting', $inc: { submitAttempts: 1 } });
    await store.transition('b2', id, { state: 'polling', taskId: 't1', $inc: { ambiguousSubmits: 1 } });
    const done = await store.transition('b2', id, { state: 'succeeded', resultUrls: ['https://r/1.png'], creditsConsumed: 20, $inc: { polls: 3 } });
    expect(done.status).toBe('ok');
    if (done.status !== 'ok') return;
    expect(done.previous).toBe('polling');
    expect(done.record).toMatchObject({ state: 'succeeded', taskId: 't1', submitAttempts: 1, ambiguousSubmits: 1, polls: 3, creditsConsumed: 20 });
    const refused = await store.transition('b2', id, { state: 'cancelled' }, { from: ['waiting'] });
    expect(refused.status).toBe('refused');
    const s = await store.getSummary('b2');
    expect(s).toMatchObject({ total: 1, creditsConsumed: 20, ambiguousSubmits: 1 });
    expect(s?.counts).toMatchObject({ waiting: 0, submitting: 0, polling: 0, succeeded: 1, cancelled: 0 });
    expect(s?.finishedAt).not.toBeNull();
    expect(s?.etaSeconds).toBe(0);
    // an empty array survives Lua's JSON round trip as an array
    await store.transition('b2', id, { resultUrls: [] });
    expect((await store.getRecord('b2', id))?.resultUrls).toEqual([]);
    expect((await store.transition('b2', 'f'.repeat(24), { state: 'failed' })).status).toBe('missing');
  });

  it('stores a record without its fields that have no value, and reads it back whole', async () => {
    make();
    const id = 'd'.repeat(24);
    await store.createRecords('b4', [{ jobId: id, input: 'https://x/1.png', model: 'recraft/crisp-upscale', factor: null }]);
    const stored = () => redis.hget(store.keys.records('b4'), id).then((j) => JSON.parse(j as string) as Record<string, unknown>);
    // a new record keeps only what has a value: no null, no empty resultUrls or meta
    expect(Object.values(await stored())).not.toContain(null);
    expect(await stored()).not.toHaveProperty('resultUrls');
    expect(await stored()).not.toHaveProperty('meta');
    for (const field of ['jobId', 'batchId', 'submitAttempts', 'ambiguousSubmits', 'polls', 'generation']) expect(await stored()).not.toHaveProperty(field);
    const read = await store.getRecord('b4', id);
    expect(read).toMatchObject({ jobId: id, batchId: 'b4', factor: null, taskId: null, failCode: null, outputUrl: null, line: null, resultUrls: [], meta: {}, polls: 0, generation: 0 });
    for (const f of RECORD_FIELDS) expect(read, f).toHaveProperty(f);
    // a patch's null removes the field; a value sets it; the answer is the whole record
    await store.transition('b4', id, { state: 'failed', failCode: '500', failMsg: 'boom' });
    expect(await stored()).toMatchObject({ failCode: '500', failMsg: 'boom' });
    const back = await store.transition('b4', id, { state: 'waiting', failCode: null, failMsg: null, lastFailCode: '500' });
    expect(await stored()).not.toHaveProperty('failCode');
    expect(back.status === 'ok' && back.record).toMatchObject({ failCode: null, failMsg: null, lastFailCode: '500', state: 'waiting' });
    // a record stored with nulls (before this change) is read the same, and loses them at its next change
    const old = { ...(await store.getRecord('b4', id)), sha256: null, kieState: null };
    await redis.hset(store.keys.records('b4'), id, JSON.stringify(old));
    expect(await store.getRecord('b4', id)).toEqual(old);
    await store.transition('b4', id, { $inc: { polls: 1 } });
    expect(Object.values(await stored())).not.toContain(null);
    expect(await stored()).toMatchObject({ polls: 1 });
    expect(await store.getRecord('b4', id)).toMatchObject({ polls: 1, submitAttempts: 0 });
  });

  it('keeps counts exact under concurrent transitions from many clients', async () => {
    make();
    const ids = Array.from({ length: 200 }, (_, i) => i.toString(16).padStart(24, '0'));
    await store.createRecords('b3', ids.map((jobId) => ({ jobId, input: jobId, model: TOPAZ, factor: '2' as const })));
    const clients = Array.from({ length: 4 }, () => new ResultStore(new Redis(testRedisUrl()), prefix, 60_000));
    await Promise.all(
      ids.map(async (id, i) => {
        const s = clients[i % 4]!;
        await s.transition('b3', id, { state: 'submitting' });
        await s.transition('b3', id, { state: 'polling' });
        await s.transition('b3', id, { state: i % 3 === 0 ? 'failed' : 'succeeded', creditsConsumed: i % 3 === 0 ? 0 : 0.5 });
      }),
    );
    for (const c of clients) c.redis.disconnect();
    const s = await store.getSummary('b3');
    expect(s?.counts).toMatchObject({ waiting: 0, submitting: 0, polling: 0, failed: 67, succeeded: 133 });
    expect(s?.creditsConsumed).toBe(66.5);
    let n = 0;
    for await (const r of store.records('b3', 50)) {
      expect(['failed', 'succeeded']).toContain(r.state);
      n++;
    }
    expect(n).toBe(200);
    expect((await store.listBatches()).map((b) => b.batchId)).toEqual(['b3']);
  });
});
