import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTaskGate } from '../../src/worker/create-gate.js';
import { RECOVER_WINDOWS, SlidingGate } from '../../src/worker/sliding-gate.js';
import { startLocalRig, type LocalRig } from './preflight-fixtures.js';

let rig: LocalRig;
beforeAll(async () => {
  rig = await startLocalRig({ env: { OUTPUT_DIR: '', KIE_CREATE_LIMIT: '20/1s' } });
});
afterAll(() => rig.stop());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The most arrivals in any interval (t − window, t]. */
function peakInWindow(arrivals: number[], windowMs: number): number {
  const a = [...arrivals].sort((x, y) => x - y);
  let peak = 0;
  let lo = 0;
  for (let hi = 0; hi < a.length; hi++) {
    while (a[lo]! <= a[hi]! - windowMs) lo++;
    peak = Math.max(peak, hi - lo + 1);
  }
  return peak;
}

describe('createTask send gate (exact sliding window)', () => {
  it('lets the whole budget through at once, then the next call waits until one window after the first answers', async () => {
    const gate = createTaskGate(rig.rt);
    expect(gate.limit).toEqual({ max: 20, durationMs: 1000 });
    const passes = await Promise.all(Array.from({ length: 20 }, () => gate.pass()));
    expect(passes.every((p) => p.waitedMs === 0)).toBe(true);
    // One entry per call, named apart (a per-process tag and a counter) and short: a generous budget keeps thousands.
    const members = await rig.rt.redis.zrange(gate.key, '0', '-1');
    expect(new Set(members).size).toBe(20);
    expect(members.every((m) => /^[A-Za-z0-9_-]{9,14}$/.test(m))).toBe(true);
    const answeredAt = Date.now();
    await Promise.all(passes.map((p) => p.answered()));
    const next = await gate.pass();
    // Redis' clock and ours are the same machine's; allow a few ms for the round trips.
    expect(Date.now() - answeredAt).toBeGreaterThanOrEqual(1000 - 5);
    expect(next.waitedMs).toBeGreaterThan(0);
    await next.answered();
  });

  it('an unanswered call (a transport failure, a dead process) counts until its request timeout plus one window', async () => {
    const gate = new SlidingGate(rig.rt.redis, `${rig.rt.config.prefix}:gate:test-hold`, { max: 1, durationMs: 200 }, 400);
    const started = Date.now();
    await gate.pass(); // never answered
    await gate.pass();
    expect(Date.now() - started).toBeGreaterThanOrEqual(600 - 5);
  });

  it('a pass given back (the call was never sent) stops counting at once; an unanswered one counts until timeout + window', async () => {
    const gate = new SlidingGate(rig.rt.redis, `${rig.rt.config.prefix}:gate:test-cancel`, { max: 1, durationMs: 200 }, 5000);
    const first = await gate.pass();
    await first.release();
    const started = Date.now();
    const second = await gate.pass();
    expect(second.waitedMs).toBe(0);
    expect(Date.now() - started).toBeLessThan(1000);
    // Not given back: the next one waits for the request timeout plus a window.
    const third = gate.pass();
    const waited = await Promise.race([third.then(() => 'passed'), sleep(1500).then(() => 'waiting')]);
    expect(waited).toBe('waiting');
    await second.release();
    await third;
  });

  it('waiters sleep until their turn can come: a few asks per call let through, not one per fixed step (catalogue benchmark: ~100 asks per image before)', async () => {
    const redis = rig.rt.redis.duplicate();
    const evalsha = redis.evalsha.bind(redis);
    let asks = 0;
    redis.evalsha = ((...args: Parameters<typeof evalsha>) => {
      asks++;
      return evalsha(...args);
    }) as typeof redis.evalsha;
    const limit = { max: 4, durationMs: 200 };
    const gate = new SlidingGate(redis, `${rig.rt.config.prefix}:gate:test-queue`, limit, 5000);
    const order: number[] = [];
    const started = Date.now();
    await Promise.all(
      Array.from({ length: 24 }, async (_, i) => {
        await sleep(i * 2); // they ask in this order
        const pass = await gate.pass();
        order.push(i);
        await pass.answered();
      }),
    );
    redis.disconnect();
    // 24 calls at 4 per 200 ms (each counting one window after its answer): at least five windows after the first burst.
    expect(Date.now() - started).toBeGreaterThanOrEqual(5 * limit.durationMs);
    // 24 answers, and the asks to pass: 65-80 here; the old fixed step (25 ms here) asked 445 times.
    expect(asks - 24).toBeLessThanOrEqual(24 * 4);
    expect(order).toHaveLength(24);
  });

  it('no window of arrivals holds more than the budget, however the network delays each call', async () => {
    const limit = { max: 8, durationMs: 250 };
    const gate = new SlidingGate(rig.rt.redis, `${rig.rt.config.prefix}:gate:test-jitter`, limit, 5000);
    const arrivals: number[] = [];
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const started = Date.now();
    await Promise.all(
      Array.from({ length: 12 }, async () => {
        for (let i = 0; i < 6; i++) {
          const pass = await gate.pass();
          await sleep(rand() * 40); // on the way to kie.ai
          arrivals.push(Date.now()); // kie.ai counts it here
          await sleep(rand() * 40); // the answer on its way back
          await pass.answered();
        }
      }),
    );
    expect(arrivals).toHaveLength(72);
    expect(peakInWindow(arrivals, limit.durationMs)).toBeLessThanOrEqual(limit.max);
    // 72 calls at 8 per 250 ms cannot have taken less than 8 full windows.
    expect(Date.now() - started).toBeGreaterThanOrEqual(8 * limit.durationMs);
  });

  it('learns a lower budget from 429s: the next burst holds what kie.ai accepted, then climbs back one call at a time', async () => {
    const limit = { max: 10, durationMs: 300 };
    const gate = new SlidingGate(rig.rt.redis, `${rig.rt.config.prefix}:gate:test-learn`, limit, 5000);
    const burst = await Promise.all(Array.from({ length: 10 }, () => gate.pass()));
    // kie.ai's real budget is 4: it accepts 4 and refuses 6, answers arriving in any order.
    const refusal = { code: 429, httpStatus: 200 };
    const answeredAt = Date.now();
    await Promise.all(burst.map((p, i) => (i % 5 < 2 ? p.settled() : p.settled(refusal))));
    expect(await gate.effectiveMax()).toBe(4);
    // One window after the answers the gate sends 4 at once, not 10.
    const next = await Promise.all(Array.from({ length: 4 }, () => gate.pass()));
    expect(Date.now() - answeredAt).toBeGreaterThanOrEqual(limit.durationMs - 5);
    const extra = gate.pass();
    const raced = await Promise.race([extra.then(() => 'passed'), sleep(limit.durationMs / 2).then(() => 'waiting')]);
    expect(raced).toBe('waiting');
    await Promise.all(next.map((p) => p.settled()));
    await (await extra).settled();
    // Without refusals, one call more per RECOVER_WINDOWS windows, up to the configured max.
    await sleep(limit.durationMs * RECOVER_WINDOWS + 20);
    expect(await gate.effectiveMax()).toBe(5);
    // A transport failure (no answer) teaches nothing; a 455 or a 500 is an answer, not a refusal for the rate.
    const others = await Promise.all([gate.pass(), gate.pass()]);
    await others[0].settled(new Error('socket hang up'));
    await others[1].settled({ code: 455 });
    expect(await gate.effectiveMax()).toBe(5);
  });
});
