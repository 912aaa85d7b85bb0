/**
 * The batch index on a real Redis: every query answered from the index equals the same filter computed over every
 * record (brute force), as records move between states; failure groups, finished-per-minute counts, the rebuild of
 * an index-less batch, retention of every index key, and snapshots for exact exports.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import {
  MAX_SEARCH_MATCHES,
  QueryError,
  ensureIndex,
  failureGroups,
  finishedPerMinute,
  queryAll,
  queryRecords,
  type RecordQuery,
} from '../../src/results/batch-query.js';
import { MAX_FAILURE_GROUPS } from '../../src/results/index-lua.js';
import { TERMINAL_STATES, type ResultRecord } from '../../src/results/record.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { deletePrefix, freshPrefix, testRedisUrl } from '../helpers/redis.js';

const MODEL = 'topaz/image-upscale' as const;
const BATCH = 'catalog';
const N = 300;
const id = (n: number) => n.toString(16).padStart(24, '0');
const T0 = Date.UTC(2026, 10, 29, 12, 0, 0);

let rt: Runtime;
let prefix: string;

beforeEach(() => {
  prefix = freshPrefix('ix');
  rt = createRuntime(loadConfig({}, { REDIS_URL: testRedisUrl(), UPSCALE_PREFIX: prefix, LOG_LEVEL: 'silent' }));
});
afterEach(async () => {
  await rt.close();
  await deletePrefix(testRedisUrl(), prefix);
});

/** 300 images, sku = 10000 + i; i%10: 0-5 succeeded, 6 failed 422, 7 failed 500, 8 timed out, 9 left waiting/polling. */
async function seed(): Promise<void> {
  await rt.store.createRecords(
    BATCH,
    Array.from({ length: N }, (_, i) => ({
      jobId: id(i + 1),
      input: `https://img.test/catalog/IMG_${String(i).padStart(4, '0')}.jpg?v=1`,
      model: MODEL,
      factor: '2' as const,
      line: i + 2,
      meta: { sku: String(10000 + i), colour: i % 2 === 0 ? 'Red' : 'Blue' },
    })),
    T0,
  );
  for (let i = 0; i < N; i++) {
    const k = i % 10;
    const jobId = id(i + 1);
    if (k === 9 && i % 20 === 9) continue; // waiting
    await rt.store.transition(BATCH, jobId, { state: 'submitting' }, { now: T0 + i * 1000 });
    await rt.store.transition(BATCH, jobId, { state: 'polling', taskId: `task-${i}`, submittedAt: T0 + i * 1000 }, { now: T0 + i * 1000 });
    const at = T0 + 60_000 + ((i * 7919) % N) * 1000; // finish order differs from line order
    if (k <= 5) await rt.store.transition(BATCH, jobId, { state: 'succeeded', creditsConsumed: 10, completedAt: at }, { now: at });
    if (k === 6) await rt.store.transition(BATCH, jobId, { state: 'failed', failCode: '422', failMsg: 'The input image is not supported', completedAt: at }, { now: at });
    if (k === 7) await rt.store.transition(BATCH, jobId, { state: 'failed', failCode: '500', failMsg: 'internal error', completedAt: at }, { now: at });
    if (k === 8) await rt.store.transition(BATCH, jobId, { state: 'timed_out', failCode: 'timed_out', failMsg: 'task still generating', completedAt: at }, { now: at });
  }
}

async function everyRecord(): Promise<ResultRecord[]> {
  const out: ResultRecord[] = [];
  for await (const r of rt.store.records(BATCH)) out.push(r);
  return out;
}

/** The query computed the slow way over every record. */
function bruteForce(all: ResultRecord[], q: RecordQuery): string[] {
  const s = (q.search ?? '').trim().toLowerCase();
  const name = (input: string) => (input.replace(/[?#].*$/, '').split('/').pop() ?? '').toLowerCase();
  const matches = (r: ResultRecord) => {
    if (s === '') return true;
    if (s.includes('/')) return name(r.input).startsWith(s.split('/').pop()!) && r.input.toLowerCase().includes(s);
    const terms = [r.taskId ?? '', name(r.input), ...Object.values(r.meta)].map((t) => t.toLowerCase());
    return terms.some((t) => t !== '' && t.startsWith(s));
  };
  const finished = (r: ResultRecord) => TERMINAL_STATES.includes(r.state);
  const rows = all
    .filter((r) => (q.state ? r.state === q.state : true))
    .filter((r) => (q.failCode ? (r.state === 'failed' || r.state === 'timed_out') && (r.failCode ?? r.state) === q.failCode : true))
    .filter((r) => (q.sort === 'finished' ? finished(r) : true))
    .filter(matches);
  const key = (r: ResultRecord) => (q.sort === 'finished' ? (r.completedAt ?? r.updatedAt) : (r.line ?? 0));
  rows.sort((a, b) => key(a) - key(b) || a.jobId.localeCompare(b.jobId));
  if (q.desc) rows.reverse();
  return rows.map((r) => r.jobId);
}

async function viaIndex(q: RecordQuery): Promise<string[]> {
  const ids: string[] = [];
  for (let offset = 0; ; offset += 37) {
    const page = await queryRecords(rt.store, BATCH, q, offset, 37);
    ids.push(...page.records.map((r) => r.jobId));
    if (offset + 37 >= page.total) {
      expect(ids).toHaveLength(page.total);
      return ids;
    }
  }
}

const QUERIES: RecordQuery[] = [
  {},
  { desc: true },
  { state: 'succeeded' },
  { state: 'failed', desc: true },
  { state: 'waiting' },
  { failCode: '422' },
  { failCode: '500', sort: 'finished' },
  { failCode: 'timed_out', desc: true },
  { sort: 'finished' },
  { sort: 'finished', desc: true, state: 'succeeded' },
  { search: '10123' }, // sku
  { search: '101' }, // many skus
  { search: 'red', state: 'failed' },
  { search: 'IMG_012' }, // file name, any case
  { search: 'task-29' },
  { search: id(77).slice(0, 23) }, // a jobId is not searched
  { search: 'https://img.test/catalog/IMG_0042.jpg' },
  { search: '/catalog/img_00' },
  { search: 'nothing-like-this' },
  { search: '10', failCode: '422', sort: 'finished', desc: true },
];

describe('batch index', () => {
  it('answers every query exactly as a brute-force filter over the records, in order, across pages', async () => {
    await seed();
    const all = await everyRecord();
    for (const q of QUERIES) expect(await viaIndex(q), JSON.stringify(q)).toEqual(bruteForce(all, q));
  });

  it('follows records as they move: a retry leaves the failure group, a new finish joins the finish order', async () => {
    await seed();
    const failed = await queryRecords(rt.store, BATCH, { failCode: '422' }, 0, 500);
    expect(failed.total).toBe(30);
    const moved = failed.records[0]!;
    await rt.store.transition(BATCH, moved.jobId, { state: 'waiting', failCode: null, failMsg: null, completedAt: null, taskId: null });
    expect((await queryRecords(rt.store, BATCH, { failCode: '422' })).total).toBe(29);
    const byTask = await queryRecords(rt.store, BATCH, { search: moved.taskId! }, 0, 500);
    expect(byTask.total).toBeGreaterThan(0); // task-6 is a prefix of task-60...
    expect(byTask.records.map((r) => r.jobId)).not.toContain(moved.jobId);
    expect((await queryRecords(rt.store, BATCH, { state: 'waiting', search: moved.meta.sku })).records.map((r) => r.jobId)).toEqual([moved.jobId]);
    await rt.store.transition(BATCH, moved.jobId, { state: 'succeeded', completedAt: T0 + 10_000_000 }, { now: T0 + 10_000_000 });
    const last = await queryRecords(rt.store, BATCH, { sort: 'finished', desc: true }, 0, 1);
    expect(last.records[0]?.jobId).toBe(moved.jobId);
    const all = await everyRecord();
    for (const q of QUERIES) expect(await viaIndex(q), JSON.stringify(q)).toEqual(bruteForce(all, q));
  });

  it('groups failures by failCode and reason with counts, and filters by group', async () => {
    await seed();
    const groups = await failureGroups(rt.store, BATCH);
    expect(groups.map((g) => [g.failCode, g.reason, g.count])).toEqual([
      ['422', 'The input image is not supported', 30],
      ['500', 'internal error', 30],
      ['timed_out', 'task still generating', 30],
    ]);
    const page = await queryRecords(rt.store, BATCH, { group: groups[1]!.id }, 0, 500);
    expect(page.total).toBe(30);
    expect(page.records.every((r) => r.failCode === '500')).toBe(true);
    expect((await queryRecords(rt.store, BATCH, { failCode: 'no-such-code' })).total).toBe(0);
    // a group and a failCode both narrow (the trial's ?group=<a preflight group>&failCode=501 listed the group)
    expect((await queryRecords(rt.store, BATCH, { group: groups[1]!.id, failCode: '500' })).total).toBe(30);
    expect((await queryRecords(rt.store, BATCH, { group: groups[1]!.id, failCode: '422' })).total).toBe(0);
    expect((await queryRecords(rt.store, BATCH, { group: groups[1]!.id, failCode: 'nonexistent' })).total).toBe(0);
  });

  it('keeps at most MAX_FAILURE_GROUPS groups; further kinds of failure share one "other" group', async () => {
    const images = Array.from({ length: MAX_FAILURE_GROUPS + 5 }, (_, i) => ({ jobId: id(i + 1), input: `https://x.test/${i}.png`, model: MODEL, factor: '2' as const, line: i + 1 }));
    await rt.store.createRecords(BATCH, images);
    const word = (i: number) => String.fromCharCode(97 + (i % 26)) + String.fromCharCode(97 + Math.floor(i / 26));
    for (const [i, img] of images.entries()) await rt.store.transition(BATCH, img.jobId, { state: 'failed', failCode: '400', failMsg: `bad thing kind ${word(i)}` });
    const groups = await failureGroups(rt.store, BATCH);
    expect(groups).toHaveLength(MAX_FAILURE_GROUPS + 1);
    expect(groups[0]).toMatchObject({ id: 'other', count: 5 });
    // a failCode finds its images in the 'other' group too, and narrows that group
    expect((await queryRecords(rt.store, BATCH, { failCode: '400' })).total).toBe(MAX_FAILURE_GROUPS + 5);
    expect((await queryRecords(rt.store, BATCH, { group: 'other', failCode: '400' })).total).toBe(5);
    expect((await queryRecords(rt.store, BATCH, { group: 'other', failCode: '500' })).total).toBe(0);
    const ordered = await queryRecords(rt.store, BATCH, { failCode: '400' }, 0, 100);
    expect(ordered.records.map((r) => r.line)).toEqual(images.map((img) => img.line));
  });

  it('groups by the reason pattern: numbers, byte counts, sizes, URLs, paths, quoted strings and ids do not split a group', async () => {
    const reasons: [string, string, string][] = [
      // [failCode, reason, the pattern it must group under]
      ['decode', 'JPEG file is truncated: it ends after 1067 bytes, before its end marker (EOI)', 'JPEG file is truncated: it ends after <size>, before its end marker (EOI)'],
      ['decode', 'JPEG file is truncated: it ends after 52311 bytes, before its end marker (EOI)', 'JPEG file is truncated: it ends after <size>, before its end marker (EOI)'],
      ['422', 'image 600x400 is below the minimum 640x480', 'image <w>x<h> is below the minimum <w>x<h>'],
      ['422', 'image 32X32 is below the minimum 640x480', 'image <w>x<h> is below the minimum <w>x<h>'],
      ['download', 'GET https://img.test/a/IMG_0001.jpg?v=1 answered 404', 'GET <url> answered <n>'],
      ['download', 'GET http://cdn.test/b.png answered 404', 'GET <url> answered <n>'],
      ['input', 'cannot read /data/in/IMG_0001.jpg: no such file', 'cannot read <path>: no such file'],
      ['input', 'cannot read C:\\shop\\IMG_7.jpg: no such file', 'cannot read <path>: no such file'],
      ['input', 'cannot read photos/2024/IMG_9.jpg: no such file', 'cannot read <path>: no such file'],
      ['400', 'column "image" value \'IMG 1.jpg\' is not a URL', 'column "<text>" value \'<text>\' is not a URL'],
      ['400', 'column "picture" value \'x\' is not a URL', 'column "<text>" value \'<text>\' is not a URL'],
      ['500', 'task 9f8e7d6c5b4a3f2e1d0c failed', 'task <id> failed'],
      ['500', 'task 0123456789abcdef0123 failed', 'task <id> failed'],
      ['500', 'task 123e4567-e89b-12d3-a456-426614174000 failed', 'task <id> failed'],
      ['413', 'output is 12.5 MB, over the 10 MB limit', 'output is <size>, over the <size> limit'],
      ['413', 'output is 900 KB, over the 512 KiB limit', 'output is <size>, over the <size> limit'],
    ];
    const images = reasons.map((_, i) => ({ jobId: id(i + 1), input: `https://x.test/${i}.png`, model: MODEL, factor: '2' as const, line: i + 1 }));
    await rt.store.createRecords(BATCH, images);
    for (const [i, [failCode, failMsg]] of reasons.entries()) await rt.store.transition(BATCH, id(i + 1), { state: 'failed', failCode, failMsg });
    const groups = await failureGroups(rt.store, BATCH);
    const expected = new Map<string, { count: number; example: string }>();
    for (const [code, reason, pattern] of reasons) {
      const k = `${code} ${pattern}`;
      expected.set(k, { count: (expected.get(k)?.count ?? 0) + 1, example: expected.get(k)?.example ?? reason });
    }
    expect(new Map(groups.map((g) => [`${g.failCode} ${g.reason}`, { count: g.count, example: g.example }]))).toEqual(expected);
    const jpeg = groups.find((g) => g.failCode === 'decode')!;
    expect((await queryRecords(rt.store, BATCH, { group: jpeg.id })).records.map((r) => r.failMsg)).toEqual([reasons[0]![1], reasons[1]![1]]);
  });

  it('keeps truncations of 300 different byte counts in one group, so a later 500 keeps a group of its own (not "other")', async () => {
    const n = 300;
    const images = Array.from({ length: n + 1 }, (_, i) => ({ jobId: id(i + 1), input: `https://x.test/${i}.jpg`, model: MODEL, factor: '2' as const, line: i + 1 }));
    await rt.store.createRecords(BATCH, images);
    for (let i = 0; i < n; i++)
      await rt.store.transition(BATCH, id(i + 1), { state: 'failed', failCode: 'decode', failMsg: `JPEG file is truncated: it ends after ${1000 + i * 7} bytes, before its end marker (EOI)` });
    await rt.store.transition(BATCH, id(n + 1), { state: 'failed', failCode: '500', failMsg: 'internal error' });
    const groups = await failureGroups(rt.store, BATCH);
    expect(groups.map((g) => [g.failCode, g.count])).toEqual([['decode', n], ['500', 1]]);
  });

  it('an image of a batch indexed with exact-reason groups leaves its old group when it moves on', async () => {
    await rt.store.createRecords(BATCH, [{ jobId: id(1), input: 'https://x.test/1.jpg', model: MODEL, factor: '2' as const, line: 1 }]);
    await rt.store.transition(BATCH, id(1), { state: 'failed', failCode: '500', failMsg: 'upstream 503 after 3 tries' });
    // Rewrite the index as the exact-reason version left it: group id sha1(code \n reason)[0..12], value [code, reason].
    const ix = rt.store.keys.index(BATCH);
    const { createHash } = await import('node:crypto');
    const legacy = createHash('sha1').update('500\nupstream 503 after 3 tries').digest('hex').slice(0, 12);
    await rt.redis.del(`${ix}grp`, ...(await rt.redis.keys(`${ix}g:*`)));
    await rt.redis.hset(`${ix}grp`, legacy, JSON.stringify(['500', 'upstream 503 after 3 tries']));
    await rt.redis.zadd(`${ix}g:${legacy}`, 1, id(1));
    expect((await failureGroups(rt.store, BATCH)).map((g) => [g.id, g.reason, g.count])).toEqual([[legacy, 'upstream 503 after 3 tries', 1]]);
    await rt.store.transition(BATCH, id(1), { state: 'failed', failCode: '500', failMsg: 'upstream 502 after 4 tries' });
    expect((await failureGroups(rt.store, BATCH)).map((g) => [g.reason, g.count])).toEqual([['upstream <n> after <n> tries', 1]]);
    await rt.store.transition(BATCH, id(1), { state: 'waiting', failCode: null, failMsg: null });
    expect(await failureGroups(rt.store, BATCH)).toEqual([]);
  });

  it('counts images finished per minute', async () => {
    await seed();
    const minutes = await finishedPerMinute(rt.store, BATCH);
    const finished = (await everyRecord()).filter((r) => TERMINAL_STATES.includes(r.state));
    expect(minutes.reduce((n, m) => n + m.count, 0)).toBe(finished.length);
    expect(minutes[0]?.minute).toBe(Math.floor((T0 + 60_000) / 60_000));
  });

  it('rebuilds the index of a batch written without one, once', async () => {
    await seed();
    const ixKeys = await rt.redis.keys(`${rt.store.keys.index(BATCH)}*`);
    await rt.redis.del(...ixKeys.filter((k) => !k.endsWith(':min')));
    expect((await queryRecords(rt.store, BATCH, {})).total).toBe(0);
    expect(await ensureIndex(rt.store, BATCH)).toBe(N);
    expect(await ensureIndex(rt.store, BATCH)).toBe(0);
    const all = await everyRecord();
    for (const q of QUERIES) expect(await viaIndex(q), JSON.stringify(q)).toEqual(bruteForce(all, q));
  });

  it('gives every index key the batch retention and leaves no temporary key behind', async () => {
    await seed();
    await queryRecords(rt.store, BATCH, { failCode: '500', search: '10' });
    const keys = await rt.redis.keys(`${rt.store.keys.index(BATCH)}*`);
    expect(keys.length).toBeGreaterThan(10);
    expect(keys.some((k) => k.includes(':tmp:'))).toBe(false);
    for (const k of keys) {
      const ttl = await rt.redis.pttl(k);
      expect(ttl, k).toBeGreaterThan(0);
      expect(ttl, k).toBeLessThanOrEqual(rt.config.resultRetentionMs);
    }
  });

  it('snapshots a filtered set for an exact export and deletes the snapshot after', async () => {
    await seed();
    const all = await everyRecord();
    const q: RecordQuery = { search: '1', state: 'failed', desc: true };
    const ids: string[] = [];
    for await (const r of queryAll(rt.store, BATCH, q, 7)) {
      ids.push(r.jobId);
      if (ids.length === 1) await rt.store.transition(BATCH, r.jobId, { state: 'waiting' }); // the snapshot holds
    }
    expect(ids).toEqual(bruteForce(all, q));
    expect(await rt.redis.keys(`${rt.store.keys.index(BATCH)}tmp:*`)).toEqual([]);
  });

  it('exports every match of a capped search (q=sku-2: 12,000 matches, a page looks at 10,000), in order', async () => {
    const n = 12_000;
    for (let i = 0; i < n; i += 3000) {
      await rt.store.createRecords(
        BATCH,
        Array.from({ length: 3000 }, (_, k) => ({ jobId: id(i + k + 1), input: `https://x.test/${i + k}.jpg`, model: MODEL, factor: '2' as const, line: i + k + 2, meta: { sku: `sku-2${String(i + k).padStart(5, '0')}` } })),
      );
    }
    await rt.store.createRecords(BATCH, [{ jobId: id(n + 1), input: 'https://x.test/other.jpg', model: MODEL, factor: '2' as const, line: n + 2, meta: { sku: 'sku-3' } }]);
    const page = await queryRecords(rt.store, BATCH, { search: 'sku-2' }, 0, 50);
    expect(page).toMatchObject({ capped: true, total: MAX_SEARCH_MATCHES });
    const lines: number[] = [];
    for await (const r of queryAll(rt.store, BATCH, { search: 'sku-2' }, 1000)) lines.push(r.line!);
    expect(lines).toHaveLength(n);
    expect(lines).toEqual(Array.from({ length: n }, (_, i) => i + 2));
    const desc: number[] = [];
    for await (const r of queryAll(rt.store, BATCH, { search: 'sku-2', state: 'waiting', desc: true }, 1000)) desc.push(r.line!);
    expect(desc).toEqual(lines.slice().reverse());
    expect(await rt.redis.keys(`${rt.store.keys.index(BATCH)}tmp:*`)).toEqual([]);
  });

  it('refuses what it cannot answer with a reason', async () => {
    await seed();
    await expect(queryRecords(rt.store, BATCH, { search: 'https://img.test/catalog/' })).rejects.toThrow(QueryError);
    await expect(queryRecords(rt.store, BATCH, { sort: 'finished', state: 'polling' })).rejects.toThrow(
      'sort "finished" lists finished images only; "polling" images have no finish time',
    );
    await expect(queryRecords(rt.store, BATCH, { state: 'done' as never })).rejects.toThrow(/state "done" must be one of/);
    expect(MAX_SEARCH_MATCHES).toBeGreaterThan(1000);
  });
});
