/**
 * `SimOptions.latencyByInput` (`upscale sim --latency-by-input`): a task's latency and outcome are a function of
 * (seed, model, factor, input URL, n-th task of that input), whatever the creation order, so two runs that create the
 * same images in different orders (bench scenario 1: ours against the naive client) get the same latency per image.
 * Off (the default), the draws stay in creation order from one stream each, as before.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startSimulator, type SimOptions, type Simulator } from '../../src/sim/index.js';
import { lognormal, streamRng } from '../../src/sim/random.js';
import { inputKey } from '../../src/sim/tasks.js';
import { recraftBody, sampleImageUrl, simCall, topazBody } from '../helpers/images.js';
import { waitFor } from '../helpers/redis.js';

const CREATE = '/api/v1/jobs/createTask';
const TOPAZ = { medianMs: 3000, p95Ms: 9000 };
const RECRAFT = { medianMs: 2000, p95Ms: 4000 };
const TIME_SCALE = 100;

const started: Simulator[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.stop()));
});

async function start(o: Partial<SimOptions> = {}): Promise<Simulator> {
  const s = await startSimulator({
    apiKeys: ['k'],
    timeScale: TIME_SCALE,
    dialect: 'docs',
    seed: 7,
    latency: { 'topaz/image-upscale': TOPAZ, 'recraft/crisp-upscale': RECRAFT },
    createLimit: { max: 10_000, durationMs: 10_000 },
    ...o,
  });
  started.push(s);
  return s;
}

/** An image of the scenario: a sample name and its model (topaz with a factor, or recraft). */
interface Pic {
  name: string;
  model: 'topaz' | 'recraft';
  factor?: string;
}

const PICS: Pic[] = [
  { name: 'a', model: 'topaz', factor: '2' },
  { name: 'b', model: 'topaz', factor: '2' },
  { name: 'c', model: 'recraft' },
  { name: 'd', model: 'topaz', factor: '4' },
  { name: 'e', model: 'recraft' },
  { name: 'f', model: 'topaz', factor: '2' },
];

function bodyOf(s: Simulator, p: Pic): unknown {
  const url = sampleImageUrl(s.url, p.name, 32, 24);
  return p.model === 'topaz' ? topazBody(url, p.factor) : recraftBody(url);
}

async function create(s: Simulator, body: unknown): Promise<void> {
  const a = await simCall(s.url, CREATE, { body });
  expect(a.json, JSON.stringify(a.json)).toMatchObject({ code: 200 });
}

/** `model factor /path` → drawn latency (scaled ms), for every task of `s`, in creation order. */
function latencies(s: Simulator): [string, number][] {
  return s.tasks().map((t) => [`${t.model} ${t.factor ?? '-'} ${inputKey(t.input, [s.url])}`, t.latencyMs]);
}

describe('latencyByInput', () => {
  it('draws the same latency and outcome for the same input in two simulators with different creation orders', async () => {
    const one = await start({ latencyByInput: true, failRate: 0.5 });
    const two = await start({ latencyByInput: true, failRate: 0.5 });
    expect(one.port).not.toBe(two.port); // the input URLs differ by port: only their path keys the draw
    for (const p of PICS) await create(one, bodyOf(one, p));
    // Another order, with a task of an unrelated image first that would shift a creation-order stream.
    await create(two, topazBody(sampleImageUrl(two.url, 'other', 32, 24)));
    for (const p of [...PICS].reverse()) await create(two, bodyOf(two, p));
    const first = new Map(latencies(one));
    const second = new Map(latencies(two));
    expect(first.size).toBe(PICS.length);
    for (const [key, ms] of first) expect(second.get(key), key).toBe(ms);
    // Outcomes too (drawn per input with failRate 0.5: some succeed, some fail, the same ones in both).
    await waitFor(() => one.stats().tasksInFlight === 0 && two.stats().tasksInFlight === 0, { timeoutMs: 20_000, what: 'all tasks ended' });
    const states = (s: Simulator) => new Map(s.tasks().map((t) => [`${t.model} ${t.factor ?? '-'} ${inputKey(t.input, [s.url])}`, `${t.state} ${t.failCode}`]));
    const a = states(one);
    const b = states(two);
    for (const [key, st] of a) expect(b.get(key), key).toBe(st);
    expect(new Set([...a.values()].map((v) => v.split(' ')[0]))).toEqual(new Set(['success', 'fail']));
    // The drawn latency is what the schedule ran on: completion comes at or after it (the upscale adds to it).
    for (const t of one.tasks()) expect((t.completedAt as number) - t.createdAt).toBeGreaterThanOrEqual(Math.floor(t.latencyMs) - 1);
  });

  it('different inputs, factors and seeds draw different latencies; a second task of the same input draws anew, the same way in every run', async () => {
    const one = await start({ latencyByInput: true });
    const two = await start({ latencyByInput: true });
    const other = await start({ latencyByInput: true, seed: 8 });
    for (const p of PICS) await create(one, bodyOf(one, p));
    const drawn = latencies(one).map(([, ms]) => ms);
    expect(new Set(drawn).size).toBe(PICS.length);
    // Same URL, another factor: another draw.
    await create(one, topazBody(sampleImageUrl(one.url, 'a', 32, 24), '4'));
    expect(latencies(one)[PICS.length]?.[1]).not.toBe(drawn[0]);
    // Another seed: other draws for the same inputs.
    for (const p of PICS) await create(other, bodyOf(other, p));
    const reseeded = latencies(other).map(([, ms]) => ms);
    expect(reseeded.filter((ms, i) => ms === drawn[i])).toEqual([]);
    // A retry (the same input again) draws with n = 1: not the first draw, but the same in another simulator.
    const a = (s: Simulator) => bodyOf(s, PICS[0] as Pic);
    await create(one, a(one));
    await create(two, a(two));
    await create(two, a(two));
    const retryOne = latencies(one).at(-1)?.[1];
    const [firstTwo, retryTwo] = latencies(two).map(([, ms]) => ms);
    expect(firstTwo).toBe(drawn[0]);
    expect(retryOne).not.toBe(drawn[0]);
    expect(retryTwo).toBe(retryOne);
  });

  it('is off by default: latencies come from the creation-order stream, as before', async () => {
    const one = await start();
    const two = await start();
    for (const p of PICS) await create(one, bodyOf(one, p));
    for (const p of [...PICS].reverse()) await create(two, bodyOf(two, p));
    // Today's rule: the k-th task created takes the k-th lognormal draw of the seed's "latency" stream.
    const expected = (order: Pic[]) => {
      const rng = streamRng(7, 'latency');
      const spec = (p: Pic) => (p.model === 'topaz' ? TOPAZ : RECRAFT);
      return order.map((p) => lognormal(rng, spec(p).medianMs / TIME_SCALE, spec(p).p95Ms / TIME_SCALE));
    };
    expect(latencies(one).map(([, ms]) => ms)).toEqual(expected(PICS));
    expect(latencies(two).map(([, ms]) => ms)).toEqual(expected([...PICS].reverse()));
    // So the same image takes another time once the order changes.
    const first = new Map(latencies(one));
    const differing = latencies(two).filter(([key, ms]) => first.get(key) !== ms);
    expect(differing.length).toBeGreaterThan(0);
  });

  it('keys an input on the simulator itself by its path and query; any other URL as sent', () => {
    const own = ['http://127.0.0.1:8893', 'http://127.0.0.1:41234/'];
    expect(inputKey('http://127.0.0.1:41234/sim/images/x-32x24.png?i=3', own)).toBe('/sim/images/x-32x24.png?i=3');
    expect(inputKey('http://127.0.0.1:8893/files/abc/x.png', own)).toBe('/files/abc/x.png');
    expect(inputKey('http://127.0.0.1:41235/sim/images/x-32x24.png', own)).toBe('http://127.0.0.1:41235/sim/images/x-32x24.png');
    expect(inputKey('https://cdn.example.com/a.png', own)).toBe('https://cdn.example.com/a.png');
  });
});
