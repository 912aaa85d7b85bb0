/**
 * The simulator's rate limits hold: sliding windows per key, 429 in both styles, nothing created or counted
 * for a rejected call, and the peak statistics never above the limit.
 *
 * Most cases step the windows' clock by hand (`windowClock`), so a burst is exact however loaded the machine
 * is; the real-clock cases use windows long enough for a burst on loopback.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startSimulator, type SimOptions, type Simulator } from '../../src/sim/index.js';
import { sampleImageUrl, simCall, topazBody } from '../helpers/images.js';

const CREATE = '/api/v1/jobs/createTask';
const FAST = { 'topaz/image-upscale': { medianMs: 2000, p95Ms: 4000 } };

let sim: Simulator | undefined;
afterEach(async () => {
  await sim?.stop();
  sim = undefined;
});

/** A clock the test moves: the windows see only the time it is set to. */
function steppedClock() {
  const clock = { ms: 1_000, now: () => clock.ms };
  return clock;
}

async function start(o: Partial<SimOptions>): Promise<{ s: Simulator; url: string }> {
  sim = await startSimulator({ apiKeys: ['k'], timeScale: 100, latency: FAST, dialect: 'docs', ...o });
  const url = sampleImageUrl(sim.url, 'burst');
  expect((await fetch(url)).status).toBe(200); // rendered and cached before any burst
  return { s: sim, url };
}

/** `n` createTask calls at once; the envelope codes in answer order. */
async function burst(s: Simulator, url: string, n: number, key = 'k') {
  const answers = await Promise.all(
    Array.from({ length: n }, () => simCall(s.url, CREATE, { key, body: topazBody(url) })),
  );
  return answers;
}

const codes = (answers: { json: { code: number } }[]) => answers.map((a) => a.json.code);
const count = (list: number[], code: number) => list.filter((c) => c === code).length;

describe('createTask limit (20 per 10 s, sliding)', () => {
  for (const style of ['envelope', 'http'] as const) {
    it(`accepts 20 of a burst of 40, answers 429 to the rest (${style} style), and accepts again once the window slides`, async () => {
      const clock = steppedClock();
      const { s, url } = await start({ rateLimitStyle: style, windowClock: clock.now });
      const windowMs = s.stats().createLimit.durationMs;
      expect(windowMs).toBe(100); // 10 s at ×100

      const answers = await burst(s, url, 40);
      const accepted = answers.filter((a) => a.json?.code === 200);
      const limited = answers.filter((a) => a.json?.code === 429);
      expect(accepted).toHaveLength(20);
      expect(limited).toHaveLength(20);
      for (const a of accepted) expect(a.status).toBe(200);
      for (const a of limited) {
        expect(a.status).toBe(style === 'http' ? 429 : 200);
        expect(a.json.data).toBeNull();
        expect(typeof a.json.msg).toBe('string');
      }
      let stats = s.stats();
      expect(stats).toMatchObject({ createAccepted: 20, createRejected429: 20, peakCreateInWindow: 20 });
      expect(stats.perInput[url]).toBe(20);
      expect(stats.duplicatedInputs).toEqual([url]);
      expect(s.tasks()).toHaveLength(20);

      clock.ms += windowMs - 1; // not yet: the burst is still in the window
      expect(codes(await burst(s, url, 1))).toEqual([429]);
      clock.ms += 1; // the burst has left the window
      expect(count(codes(await burst(s, url, 25)), 200)).toBe(20);
      stats = s.stats();
      expect(stats).toMatchObject({ createAccepted: 40, createRejected429: 26 });
      expect(stats.peakCreateInWindow).toBeLessThanOrEqual(20);
    });
  }

  it('slides: calls from the last window still count, older ones do not (a fixed window would differ)', async () => {
    const clock = steppedClock();
    const { s, url } = await start({ windowClock: clock.now });
    const start0 = clock.ms;
    expect(count(codes(await burst(s, url, 10)), 200)).toBe(10);
    clock.ms = start0 + 60;
    expect(count(codes(await burst(s, url, 10)), 200)).toBe(10); // 20 within 100 ms now
    clock.ms = start0 + 105; // the first 10 have left the window, the second 10 have not
    expect(count(codes(await burst(s, url, 20)), 200)).toBe(10);
    clock.ms = start0 + 165; // the second 10 have left too; the 10 from +105 remain
    expect(count(codes(await burst(s, url, 20)), 200)).toBe(10);
    expect(s.stats()).toMatchObject({ createAccepted: 40, createRejected429: 20, peakCreateInWindow: 20 });
  });

  it('holds on the real clock too: a burst of 40 within one window gets exactly 20', async () => {
    const { s, url } = await start({ timeScale: 1 }); // a real 10 s window: a loopback burst fits in it
    const list = codes(await burst(s, url, 40));
    expect([count(list, 200), count(list, 429)]).toEqual([20, 20]);
    expect(s.stats().peakCreateInWindow).toBe(20);
  });

  it('counts per key, and a refused createTask (422) does not use up the window', async () => {
    const clock = steppedClock();
    const { s, url } = await start({
      apiKeys: ['a', 'b'],
      createLimit: { max: 2, durationMs: 10_000 },
      windowClock: clock.now,
    });
    const bad = await simCall(s.url, CREATE, { key: 'a', body: topazBody(`${s.url}/sim/images/missing`) });
    expect(bad.json.code).toBe(422);
    expect(codes(await burst(s, url, 3, 'a')).sort()).toEqual([200, 200, 429]);
    expect(codes(await burst(s, url, 3, 'b')).sort()).toEqual([200, 200, 429]);
    expect(s.stats()).toMatchObject({
      createAccepted: 4,
      createRejected429: 2,
      rejected422: 1,
      peakCreateInWindow: 2,
    });
  });
});

describe('recordInfo limit (10 per 1 s, sliding)', () => {
  const path = '/api/v1/jobs/recordInfo?taskId=nope';
  const queries = (s: Simulator, n: number) =>
    Promise.all(Array.from({ length: n }, () => simCall(s.url, path)));

  it('lets 10 of a burst of 20 through, answers 429 to the rest, then lets calls through again', async () => {
    const clock = steppedClock();
    const { s } = await start({ timeScale: 1, windowClock: clock.now });
    const answers = await queries(s, 20);
    const list = codes(answers);
    expect(count(list, 422)).toBe(10); // let through: an unknown task
    expect(count(list, 429)).toBe(10);
    expect(answers.every((a) => a.status === 200)).toBe(true); // envelope style by default
    expect(s.stats()).toMatchObject({
      queries: 10,
      queries429: 10,
      peakQueriesInWindow: 10,
      queryLimit: { max: 10, durationMs: 1000 },
    });
    clock.ms += 999;
    expect(codes(await queries(s, 1))).toEqual([429]);
    clock.ms += 1;
    expect(count(codes(await queries(s, 12)), 422)).toBe(10);
    expect(s.stats()).toMatchObject({ queries: 20, queries429: 13, peakQueriesInWindow: 10 });
  });

  it('holds on the real clock: 10 of a burst of 20 within a 10 s window', async () => {
    const { s } = await start({ timeScale: 1, queryLimit: { max: 10, durationMs: 10_000 } });
    const list = codes(await queries(s, 20));
    expect([count(list, 422), count(list, 429)]).toEqual([10, 10]);
  });
});
