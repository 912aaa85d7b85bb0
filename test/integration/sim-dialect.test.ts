/**
 * The simulator speaks kie.ai's live dialect by default (issue 11 point 6, after ../shared/kie-samples): errors as
 * HTTP 200 envelopes, `costTime` in whole seconds, `422 recordInfo is null` for about 2 s (scaled) after createTask,
 * request validation errors as code 500, callbacks from a Hutool client; and its options `dailyLimit` (433),
 * `retryAfter` (429 with the header) and `oddStates`. The docs dialect stays available. (The other simulator tests pin
 * `dialect: 'docs'`; this file is where the live one is checked answer by answer.)
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type SimOptions, type Simulator } from '../../src/sim/index.js';
import { sampleImageUrl, simCall, topazBody } from '../helpers/images.js';
import { waitFor } from '../helpers/redis.js';

const CREATE = '/api/v1/jobs/createTask';
const info = (taskId: string) => `/api/v1/jobs/recordInfo?taskId=${taskId}`;
const HUTOOL = /Chrome\/75\.0\.3770\.142 Safari\/537\.36 Hutool$/;

let sim: Simulator | undefined;
afterEach(async () => {
  await sim?.stop();
  sim = undefined;
});

/** Live by default: no `dialect` here unless a test sets one. */
async function start(o: Partial<SimOptions> = {}): Promise<Simulator> {
  sim = await startSimulator({ apiKeys: ['k'], timeScale: 20, seed: 5, latency: { 'topaz/image-upscale': { medianMs: 30_000, p95Ms: 40_000 } }, ...o });
  return sim;
}

async function create(s: Simulator, name: string, extra: Record<string, unknown> = {}): Promise<string> {
  const a = await simCall(s.url, CREATE, { body: topazBody(sampleImageUrl(s.url, name, 40, 30), '2', extra) });
  expect(a.json, JSON.stringify(a.json)).toMatchObject({ code: 200 });
  return a.json.data.taskId as string;
}

/** Every recordInfo answer until the task ends (the raw JSON bodies). */
async function answersUntilEnd(s: Simulator, taskId: string) {
  const seen: { code: number; data: Record<string, unknown> | null }[] = [];
  await waitFor(
    async () => {
      const a = await simCall(s.url, info(taskId));
      if (a.json.code === 429) return false;
      seen.push(a.json);
      return s.tasks().find((t) => t.taskId === taskId)?.completedAt != null && a.json.code === 200 && a.json.data !== null && 'state' in a.json.data && /^(success|fail|SUCCEEDED|FAILED)$/.test(String(a.json.data.state));
    },
    { timeoutMs: 15_000, intervalMs: 20, what: `task ${taskId} to end` },
  );
  return seen;
}

describe('the live dialect (the default)', () => {
  it('a new task is "recordInfo is null" (code 422, HTTP 200) for about 2 s scaled, then its record; costTime is whole seconds', async () => {
    // ×2: invisible for 1 s, done in about 1.5–2 s (a loaded machine still asks well within the first second).
    const s = await start({ timeScale: 2, latency: { 'topaz/image-upscale': { medianMs: 3000, p95Ms: 4000 } } });
    const taskId = await create(s, 'live');
    const first = await simCall(s.url, info(taskId));
    expect(first.status).toBe(200);
    expect(first.json).toEqual({ code: 422, msg: 'recordInfo is null', data: null });
    // Asked every ~20 ms: the record shows only from 1 s (2 s / 2) after createTask on.
    const firstVisible = await waitFor(async () => ((await simCall(s.url, info(taskId))).json.code === 200 ? Date.now() : null), { timeoutMs: 5000, intervalMs: 20, what: 'the record' });
    expect(firstVisible - s.tasks()[0]!.createdAt).toBeGreaterThanOrEqual(1000);
    const seen = await answersUntilEnd(s, taskId);
    expect(seen.every((a) => a.code === 200)).toBe(true);
    const last = seen.at(-1)!.data!;
    expect(last.state).toBe('success');
    const elapsed = (last.completeTime as number) - (last.createTime as number);
    expect(elapsed).toBeGreaterThanOrEqual(1000);
    expect(last.costTime).toBe(Math.floor(elapsed / 1000));
  });

  it('the docs dialect: a task is visible at once and costTime is in ms', async () => {
    const s = await start({ dialect: 'docs' });
    const taskId = await create(s, 'docs');
    expect((await simCall(s.url, info(taskId))).json).toMatchObject({ code: 200, data: { taskId } });
    const last = (await answersUntilEnd(s, taskId)).at(-1)!.data!;
    expect(last.costTime).toBe((last.completeTime as number) - (last.createTime as number));
  });

  it('request validation errors are code 500 (HTTP 200) live, 422 in the docs dialect; a key refusal is an HTTP-200 envelope', async () => {
    const s = await start();
    const bad = await simCall(s.url, CREATE, { body: topazBody(sampleImageUrl(s.url, 'v'), '3') });
    expect(bad.status).toBe(200);
    expect(bad.json).toMatchObject({ code: 500, data: null });
    expect(bad.json.msg).toMatch(/upscale_factor/);
    const refused = await simCall(s.url, CREATE, { key: 'wrong', body: topazBody(sampleImageUrl(s.url, 'v')) });
    expect(refused.status).toBe(200);
    expect(refused.json).toMatchObject({ code: 401, data: null });
    await sim!.stop();
    const docs = await start({ dialect: 'docs' });
    expect((await simCall(docs.url, CREATE, { body: topazBody(sampleImageUrl(docs.url, 'v'), '3') })).json).toMatchObject({ code: 422 });
  });

  it('dailyLimit 2: the third createTask of the UTC day is 433 (HTTP 200, kie`s message), nothing created; lifted, it is accepted', async () => {
    const s = await start({ dailyLimit: 2 });
    await create(s, 'd1');
    await create(s, 'd2');
    const third = await simCall(s.url, CREATE, { body: topazBody(sampleImageUrl(s.url, 'd3', 40, 30)) });
    expect(third.status).toBe(200);
    expect(third.json).toEqual({ code: 433, msg: 'The current number of points used by apiKey has exceeded the daily limit', data: null });
    expect(s.stats().createAccepted).toBe(2);
    s.setDailyLimit(null);
    await create(s, 'd3');
    expect(s.stats().createAccepted).toBe(3);
    expect(() => s.setDailyLimit(-1)).toThrow(RangeError);
  });

  it('retryAfter: every 429 carries Retry-After, seconds scaled (120 at ×20 → 6), or a text verbatim', async () => {
    const s = await start({ retryAfter: 120, createLimit: { max: 1, durationMs: 60_000 } });
    await create(s, 'r1');
    const limited = await simCall(s.url, CREATE, { body: topazBody(sampleImageUrl(s.url, 'r2', 40, 30)) });
    expect(limited.json).toMatchObject({ code: 429 });
    expect(limited.headers.get('retry-after')).toBe('6');
    await sim!.stop();
    const t = await start({ retryAfter: 'soon', createLimit: { max: 1, durationMs: 60_000 } });
    await create(t, 'r1');
    expect((await simCall(t.url, CREATE, { body: topazBody(sampleImageUrl(t.url, 'r2', 40, 30)) })).headers.get('retry-after')).toBe('soon');
  });

  it('oddStates 1: while running a task says "", "PENDING", nothing or data: null; it ends "SUCCEEDED" or "FAILED"', async () => {
    const s = await start({ oddStates: 1, failRate: 0.5, seed: 11 });
    const ids = [await create(s, 'o1'), await create(s, 'o2'), await create(s, 'o3')];
    const words = new Set<string>();
    const finals = new Set<string>();
    for (const id of ids) {
      let last = '';
      for (const a of await answersUntilEnd(s, id)) {
        if (a.code !== 200) continue;
        last = a.data === null ? 'data:null' : 'state' in a.data ? String(a.data.state) : 'no state';
        if (/^(SUCCEEDED|FAILED)$/.test(last)) finals.add(last);
        else words.add(last);
      }
      // The outcome is the simulator's as usual; only its word is odd.
      const real = s.tasks().find((t) => t.taskId === id)!.state;
      expect(last).toBe(real === 'success' ? 'SUCCEEDED' : 'FAILED');
    }
    for (const w of words) expect(['', 'PENDING', 'no state', 'data:null']).toContain(w);
    expect(words.size).toBeGreaterThanOrEqual(2);
    expect(finals.size).toBeGreaterThanOrEqual(1);
  });
});

describe('callbacks per dialect', () => {
  let receiver: Server;
  let url = '';
  const got: IncomingHttpHeaders[] = [];
  beforeAll(async () => {
    receiver = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        got.push(req.headers);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"code":200}');
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  });
  afterAll(() => new Promise<void>((resolve) => receiver.close(() => resolve())));

  it('live callbacks come from a Hutool client; docs callbacks from the simulator`s own agent', async () => {
    got.length = 0;
    const s = await start();
    await create(s, 'cb-live', { callBackUrl: url });
    await waitFor(() => got.length === 1, { timeoutMs: 15_000, what: 'the live callback' });
    expect(got[0]!['user-agent']).toMatch(HUTOOL);
    await sim!.stop();
    const d = await start({ dialect: 'docs' });
    await create(d, 'cb-docs', { callBackUrl: url });
    await waitFor(() => got.length === 2, { timeoutMs: 15_000, what: 'the docs callback' });
    expect(got[1]!['user-agent']).toBe('kie-sim/1 (callback)');
  });
});
