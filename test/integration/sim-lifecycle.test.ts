/**
 * A task's whole life in the simulator: createTask → waiting/queuing/generating → success with a real,
 * correctly sized output (or fail with a failCode and no charge), result URLs that expire, download links,
 * the statistics per input and per path, a key revoked mid-run, and seeded determinism.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startSimulator, type SimOptions, type Simulator } from '../../src/sim/index.js';
import {
  imageSize,
  recraftBody,
  sampleImageUrl,
  simCall,
  topazBody,
  type SampleFormat,
} from '../helpers/images.js';
import { waitFor } from '../helpers/redis.js';

const CREATE = '/api/v1/jobs/createTask';
const STATES = ['waiting', 'queuing', 'generating', 'success', 'fail'];
const FAST: NonNullable<SimOptions['latency']> = {
  'topaz/image-upscale': { medianMs: 3000, p95Ms: 6000 },
  'recraft/crisp-upscale': { medianMs: 2000, p95Ms: 4000 },
};

let sim: Simulator | undefined;
afterEach(async () => {
  await sim?.stop();
  sim = undefined;
});

async function start(o: Partial<SimOptions> = {}): Promise<Simulator> {
  sim = await startSimulator({ apiKeys: ['k'], timeScale: 100, latency: FAST, seed: 42, dialect: 'docs', ...o });
  return sim;
}

async function create(s: Simulator, body: unknown): Promise<string> {
  const a = await simCall(s.url, CREATE, { body });
  expect(a.json, JSON.stringify(a.json)).toMatchObject({ code: 200, msg: 'success' });
  expect(a.json.data.taskId).toMatch(/^[0-9a-f]{32}$/);
  return a.json.data.taskId as string;
}

/** recordInfo's data, as the simulator answers it. */
interface TaskData {
  taskId: string;
  model: string;
  state: string;
  param: string;
  resultJson: string;
  failCode: string | null;
  failMsg: string | null;
  costTime: number | null;
  completeTime: number | null;
  createTime: number;
  updateTime: number;
  creditsConsumed: number;
}

/** Polls recordInfo until the task ends; returns its data and every state seen on the way. */
async function follow(s: Simulator, taskId: string) {
  const seen: string[] = [];
  const data = await waitFor(
    async () => {
      const a = await simCall(s.url, `/api/v1/jobs/recordInfo?taskId=${taskId}`);
      if (a.json.code !== 200) return null; // 429: try again
      seen.push(a.json.data.state);
      const data = a.json.data as TaskData;
      return ['success', 'fail'].includes(data.state) ? data : null;
    },
    { timeoutMs: 15_000, intervalMs: 15, what: `task ${taskId}` },
  );
  return { data, seen };
}

describe('task life', () => {
  const topazCases: [string, SampleFormat, string][] = [
    ['1', 'png', 'png'],
    ['2', 'jpg', 'jpeg'],
    ['4', 'webp', 'webp'],
    ['8', 'png', 'png'],
  ];
  it('topaz ×1/×2/×4/×8: polls to success, and the result is the input enlarged by the factor, in its format', async () => {
    const s = await start();
    const cases = topazCases.map(([factor, ext, format], i) => ({
      factor,
      format,
      url: sampleImageUrl(s.url, `life${i}`, 40 + i, 30, ext),
    }));
    const ids = await Promise.all(cases.map((c) => create(s, topazBody(c.url, c.factor))));
    for (const [i, c] of cases.entries()) {
      const { data, seen } = await follow(s, ids[i]!);
      expect(seen.every((st) => STATES.includes(st))).toBe(true);
      const order = seen.map((st) => STATES.indexOf(st));
      expect(order).toEqual([...order].sort((a, b) => a - b)); // never goes back
      expect(data).toMatchObject({
        taskId: ids[i],
        model: 'topaz/image-upscale',
        state: 'success',
        failCode: null,
        failMsg: null,
      });
      expect(JSON.parse(data.param)).toEqual(topazBody(c.url, c.factor));
      expect(data.creditsConsumed).toBe(10);
      expect(data.createTime).toBeLessThanOrEqual(data.completeTime!);
      expect(data.updateTime).toBe(data.completeTime);
      expect(data.costTime).toBe(data.completeTime! - data.createTime);
      const { resultUrls } = JSON.parse(data.resultJson) as { resultUrls: string[] };
      expect(resultUrls).toHaveLength(1);
      expect(resultUrls[0]).toMatch(new RegExp(`^${s.url}/results/${ids[i]}/0\\.(png|jpg|webp)$`));
      const res = await fetch(resultUrls[0]!);
      expect(res.status).toBe(200);
      const size = await imageSize(await res.arrayBuffer());
      expect(size).toEqual({
        format: c.format,
        width: (40 + i) * Number(c.factor),
        height: 30 * Number(c.factor),
      });
    }
    const records = s.tasks();
    expect(records.map((r) => r.state)).toEqual(['success', 'success', 'success', 'success']);
    expect(records.find((r) => r.taskId === ids[3])).toMatchObject({
      factor: '8',
      outputWidth: 43 * 8,
      outputHeight: 240,
      creditsConsumed: 10,
      callbacksSent: 0,
    });
    expect(s.stats()).toMatchObject({ tasksSucceeded: 4, tasksInFlight: 0, credits: 100_000 - 40 });
  });

  it('light mode: one real upscale per input, model and factor, served under each task\'s own result URL with the right size', async () => {
    const s = await start({ light: true });
    const same = sampleImageUrl(s.url, 'light', 36, 20, 'png');
    const other = sampleImageUrl(s.url, 'light', 30, 20, 'webp');
    const cases = [
      { url: `${same}?i=1`, factor: '2', size: { format: 'png', width: 72, height: 40 } },
      { url: `${same}?i=2`, factor: '2', size: { format: 'png', width: 72, height: 40 } },
      { url: `${same}?i=3`, factor: '4', size: { format: 'png', width: 144, height: 80 } },
      { url: other, factor: '2', size: { format: 'webp', width: 60, height: 40 } },
    ];
    const ids = await Promise.all(cases.map((c) => create(s, topazBody(c.url, c.factor))));
    const bodies: Buffer[] = [];
    for (const [i, c] of cases.entries()) {
      const { data } = await follow(s, ids[i]!);
      expect(data).toMatchObject({ state: 'success', creditsConsumed: 10 });
      const [url] = (JSON.parse(data.resultJson) as { resultUrls: string[] }).resultUrls;
      expect(url).toMatch(new RegExp(`^${s.url}/results/${ids[i]}/0\\.${c.size.format === 'png' ? 'png' : 'webp'}$`));
      const body = Buffer.from(await (await fetch(url!)).arrayBuffer());
      expect(await imageSize(body)).toEqual(c.size);
      bodies.push(body);
    }
    // The same bytes, model and factor share one output; another factor or input gets its own.
    expect(bodies[1]!.equals(bodies[0]!)).toBe(true);
    expect(bodies[2]!.equals(bodies[0]!)).toBe(false);
    // The four createTasks went at once: the simulator's task list is in arrival order, so tasks are matched by id.
    const byId = new Map(s.tasks().map((t) => [t.taskId, t]));
    expect(ids.map((id) => [byId.get(id)?.outputWidth, byId.get(id)?.outputHeight])).toEqual(cases.map((c) => [c.size.width, c.size.height]));
    expect(s.stats()).toMatchObject({ tasksSucceeded: 4, createAccepted: 4 });
  });

  it('recraft: ×2 with a sharpen', async () => {
    const s = await start();
    const url = sampleImageUrl(s.url, 'crisp', 50, 20, 'jpg');
    const { data } = await follow(s, await create(s, recraftBody(url)));
    expect(data).toMatchObject({ state: 'success', model: 'recraft/crisp-upscale', creditsConsumed: 0.5 });
    const res = await fetch((JSON.parse(data.resultJson) as { resultUrls: string[] }).resultUrls[0]!);
    expect(await imageSize(await res.arrayBuffer())).toEqual({ format: 'jpeg', width: 100, height: 40 });
  });

  it('failRate 1: state fail with failCode and failMsg, resultJson empty, creditsConsumed 0, credits refunded', async () => {
    const s = await start({ failRate: 1 });
    const { data } = await follow(s, await create(s, topazBody(sampleImageUrl(s.url, 'doomed'))));
    expect(data).toMatchObject({ state: 'fail', failCode: '500', resultJson: '', creditsConsumed: 0 });
    expect(data.failMsg).toMatch(/\w/);
    expect(s.stats()).toMatchObject({ tasksFailed: 1, credits: 100_000 });
    expect(s.tasks()[0]).toMatchObject({
      state: 'fail',
      failCode: '500',
      creditsConsumed: 0,
      resultUrls: [],
    });
  });

  it('failCodes choose the failCode of a failed task', async () => {
    const s = await start({ failRate: 1, failCodes: { '422': 1 } });
    const { data } = await follow(s, await create(s, recraftBody(sampleImageUrl(s.url, 'bad'))));
    expect(data).toMatchObject({ state: 'fail', failCode: '422' });
  });

  it('result URLs expire (404) after resultTtlMs, scaled; a download link works before that', async () => {
    const s = await start({ resultTtlMs: 60_000 }); // 600 ms at ×100
    const { data } = await follow(s, await create(s, topazBody(sampleImageUrl(s.url, 'ttl'), '1')));
    const url = (JSON.parse(data.resultJson) as { resultUrls: string[] }).resultUrls[0]!;
    const link = await simCall(s.url, '/api/v1/common/download-url', { body: { url } });
    expect(link.json).toMatchObject({ code: 200, msg: 'success' });
    expect(typeof link.json.data).toBe('string');
    expect((await fetch(link.json.data as string)).status).toBe(200);
    expect(
      (await simCall(s.url, '/api/v1/common/download-url', { body: { url: 'https://example.com/x.png' } }))
        .json.code,
    ).toBe(422);
    await waitFor(async () => (await fetch(url)).status === 404, { timeoutMs: 5000, what: 'result expiry' });
    expect((await simCall(s.url, '/api/v1/common/download-url', { body: { url } })).json.code).toBe(404);
  });

  it('counts accepted creates per input and lists inputs created more than once', async () => {
    const s = await start();
    const a = sampleImageUrl(s.url, 'a');
    const b = sampleImageUrl(s.url, 'b');
    await create(s, topazBody(a));
    await create(s, topazBody(a, '4'));
    await create(s, recraftBody(b));
    const stats = (await simCall(s.url, '/sim/stats')).json;
    expect(stats.perInput).toEqual({ [a]: 2, [b]: 1 });
    expect(stats.duplicatedInputs).toEqual([a]);
    expect(stats.createAccepted).toBe(3);
    const tasks = (await simCall(s.url, '/sim/tasks')).json as { input: string; model: string }[];
    expect(tasks.map((t) => t.input)).toEqual([a, a, b]);
    expect((await simCall(s.url, '/sim/reset-stats', { method: 'POST' })).json).toEqual({ ok: true });
    expect(s.stats()).toMatchObject({ createAccepted: 0, perInput: {}, peakCreateInWindow: 0 });
  });

  it('is deterministic for a seed: same task ids and outcomes', async () => {
    const run = async () => {
      const s = await startSimulator({
        dialect: 'docs',
        apiKeys: ['k'],
        timeScale: 100,
        latency: FAST,
        seed: 9,
        failRate: 0.5,
      });
      try {
        const url = sampleImageUrl(s.url, 'seed');
        const ids: string[] = [];
        for (let i = 0; i < 6; i++) ids.push(await create(s, topazBody(url)));
        await waitFor(() => s.stats().tasksInFlight === 0, { timeoutMs: 15_000, what: 'all tasks ended' });
        return s.tasks().map((t) => [t.taskId, t.state]);
      } finally {
        await s.stop();
      }
    };
    const first = await run();
    expect(await run()).toEqual(first);
    expect(new Set(first.map(([, st]) => st))).toEqual(new Set(['success', 'fail']));
  });

  it('setApiKeys: a revoked key answers 401 on every endpoint while its task runs on; restored, it works again; callsByPath counts refused calls too', async () => {
    const s = await start({ apiKeys: ['k', 'other'] });
    const taskId = await create(s, topazBody(sampleImageUrl(s.url, 'rvk', 40, 30)));
    s.setApiKeys(['other']);
    const refused = await Promise.all([
      simCall(s.url, CREATE, { body: topazBody(sampleImageUrl(s.url, 'rvk2', 40, 30)) }),
      simCall(s.url, `/api/v1/jobs/recordInfo?taskId=${taskId}`),
      simCall(s.url, '/api/v1/chat/credit'),
    ]);
    for (const a of refused) expect(a.json).toMatchObject({ code: 401 });
    // The other key still works, and the task created before the revocation ran on.
    const other = await simCall(s.url, `/api/v1/jobs/recordInfo?taskId=${taskId}`, { key: 'other' });
    expect(other.json).toMatchObject({ code: 200 });
    expect(() => s.setApiKeys([])).toThrow(/apiKeys must hold at least one non-empty key/);
    expect(() => s.setApiKeys([' '])).toThrow(RangeError);
    s.setApiKeys(['k']);
    const { data } = await follow(s, taskId);
    expect(data.state).toBe('success');
    expect((await simCall(s.url, '/api/v1/chat/credit')).json).toMatchObject({ code: 200 });
    const stats = s.stats();
    expect(stats.callsByPath[CREATE]).toBe(2);
    expect(stats.callsByPath['/api/v1/chat/credit']).toBe(2);
    expect(stats.creditChecks).toBe(1); // answered ones only
    expect(stats.rejected401).toBe(3);
    expect(stats.createAccepted).toBe(1);
  });
});
