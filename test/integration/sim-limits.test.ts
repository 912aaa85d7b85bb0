/**
 * The simulator's rate limits hold: sliding windows per key, 429 in both styles, nothing created or counted
 * for a rejected call, and the peak statistics never above the limit.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { sampleImageUrl, simCall, topazBody } from '../helpers/images.js';
import { waitFor } from '../helpers/redis.js';

const CREATE = '/api/v1/jobs/createTask';
const FAST = { 'topaz/image-upscale': { medianMs: 2000, p95Ms: 4000 } };

let sim: Simulator | undefined;
afterEach(async () => {
  await sim?.stop();
  sim = undefined;
});

/** Opens `n` keep-alive connections first, so a burst measures the simulator, not TCP set-up. */
async function warm(base: string, n: number): Promise<void> {
  await Promise.all(Array.from({ length: n }, () => fetch(`${base}/sim/stats`).then((r) => r.text())));
}

/** Waits until the wall clock passes `t` (a condition with a deadline, not a guess). */
const until = (t: number) => waitFor(() => Date.now() > t, { intervalMs: 5, what: `time ${t}` });

describe('createTask limit (20 per 10 s, sliding)', () => {
  for (const style of ['envelope', 'http'] as const) {
    it(`accepts 20 of a burst of 40, answers 429 to the rest (${style} style), and accepts again once the window slides`, async () => {
      // ×20: the 10 s window lasts 500 ms, plenty for a burst of 40 on loopback.
      sim = await startSimulator({ apiKeys: ['k'], timeScale: 20, rateLimitStyle: style, latency: FAST });
      const url = sampleImageUrl(sim.url, 'burst');
      expect((await fetch(url)).status).toBe(200); // rendered and cached before the burst
      await warm(sim.url, 40);
      const windowMs = sim.stats().createLimit.durationMs;
      expect(windowMs).toBe(500);

      const answers = await Promise.all(
        Array.from({ length: 40 }, () => simCall(sim!.url, CREATE, { body: topazBody(url) })),
      );
      const done = Date.now();
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
      let stats = sim.stats();
      expect(stats).toMatchObject({ createAccepted: 20, createRejected429: 20, peakCreateInWindow: 20 });
      expect(stats.perInput[url]).toBe(20);
      expect(stats.duplicatedInputs).toEqual([url]);
      expect(sim.tasks()).toHaveLength(20);

      await until(done + windowMs);
      const again = await simCall(sim.url, CREATE, { body: topazBody(url) });
      expect(again.json.code).toBe(200);
      stats = sim.stats();
      expect(stats.createAccepted).toBe(21);
      expect(stats.peakCreateInWindow).toBeLessThanOrEqual(20);
    });
  }

  it('slides: calls from the last window still count, older ones do not', async () => {
    sim = await startSimulator({ apiKeys: ['k'], timeScale: 10, latency: FAST }); // window 1 s
    const url = sampleImageUrl(sim.url, 'slide');
    await fetch(url);
    await warm(sim.url, 20);
    const burst = async (n: number) => {
      const answers = await Promise.all(
        Array.from({ length: n }, () => simCall(sim!.url, CREATE, { body: topazBody(url) })),
      );
      return answers.filter((a) => a.json?.code === 200).length;
    };
    const t0 = Date.now();
    expect(await burst(10)).toBe(10);
    const firstDone = Date.now();
    await until(t0 + 600);
    expect(await burst(10)).toBe(10); // 20 in the window now
    await until(firstDone + 1050); // the first 10 have left the window, the second 10 have not
    expect(Date.now()).toBeLessThan(t0 + 1550);
    expect(await burst(20)).toBe(10);
    expect(sim.stats()).toMatchObject({ createAccepted: 30, createRejected429: 10 });
    expect(sim.stats().peakCreateInWindow).toBeLessThanOrEqual(20);
  });

  it('counts per key, and a refused createTask (422) does not use up the window', async () => {
    sim = await startSimulator({
      apiKeys: ['a', 'b'],
      timeScale: 20,
      createLimit: { max: 2, durationMs: 10_000 },
      latency: FAST,
    });
    const url = sampleImageUrl(sim.url, 'keys');
    const bad = await simCall(sim.url, CREATE, {
      key: 'a',
      body: topazBody(`${sim.url}/sim/images/missing`),
    });
    expect(bad.json.code).toBe(422);
    const a = await Promise.all(
      [1, 2, 3].map(() => simCall(sim!.url, CREATE, { key: 'a', body: topazBody(url) })),
    );
    const b = await Promise.all(
      [1, 2, 3].map(() => simCall(sim!.url, CREATE, { key: 'b', body: topazBody(url) })),
    );
    expect(a.map((x) => x.json.code as number).sort()).toEqual([200, 200, 429]);
    expect(b.map((x) => x.json.code as number).sort()).toEqual([200, 200, 429]);
    expect(sim.stats()).toMatchObject({
      createAccepted: 4,
      createRejected429: 2,
      rejected422: 1,
      peakCreateInWindow: 2,
    });
  });
});

describe('recordInfo limit (10 per 1 s, sliding)', () => {
  it('lets 10 of a burst of 20 through, answers 429 to the rest, then lets calls through again', async () => {
    sim = await startSimulator({ apiKeys: ['k'] }); // real time: the 1 s window needs no scaling to be quick
    const path = '/api/v1/jobs/recordInfo?taskId=nope';
    await warm(sim.url, 20);
    const answers = await Promise.all(Array.from({ length: 20 }, () => simCall(sim!.url, path)));
    const done = Date.now();
    const codes = answers.map((a) => a.json.code as number);
    expect(codes.filter((c) => c === 422)).toHaveLength(10); // let through: an unknown task
    expect(codes.filter((c) => c === 429)).toHaveLength(10);
    expect(answers.every((a) => a.status === 200)).toBe(true); // envelope style by default
    expect(sim.stats()).toMatchObject({
      queries: 10,
      queries429: 10,
      peakQueriesInWindow: 10,
      queryLimit: { max: 10, durationMs: 1000 },
    });

    await until(done + 1000);
    expect((await simCall(sim.url, path)).json.code).toBe(422);
    expect(sim.stats().queries).toBe(11);
  });
});
