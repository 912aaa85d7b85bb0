/**
 * The lane slow-down with a Retry-After (issue 11 point 2), on the shared Redis: the asked wait sets it (an HTTP-date
 * 90 s ahead → 90 s), clamped to MAX_BACKOFF; absent or invalid, today's escalation applies; a longer asked wait
 * extends a slow-down in force, a shorter one leaves it.
 */
import { describe, expect, it } from 'vitest';
import { parseRetryAfter } from '../../src/kie/index.js';
import { slowDownLane } from '../../src/queue/slowdown.js';
import type { Runtime } from '../../src/runtime.js';
import { waitFor } from '../helpers/redis.js';
import { testRuntimes } from '../helpers/runtime.js';

describe('slowDownLane with Retry-After', () => {
  const make = testRuntimes('slow');

  /** ms left of the submit queue's rate limit (what every worker waits), -2 when none. */
  async function limitLeft(r: Runtime): Promise<number> {
    return r.redis.pttl(r.queues.submit.keys.limiter as string);
  }

  const slow = (r: Runtime, baseMs: number, maxMs: number, asked: number | null) =>
    slowDownLane(r.redis, r.store.keys, r.queues.submit, 'submit', baseMs, maxMs, asked);

  it('an HTTP-date 90 s ahead slows every worker for 90 s, not the 10 s escalation', async () => {
    const r = make();
    const asked = parseRetryAfter(new Date(Date.now() + 90_000).toUTCString());
    const s = await slow(r, 10_000, 600_000, asked);
    expect(s.escalated).toBe(true);
    expect(s.delayMs).toBeGreaterThan(88_000);
    expect(s.delayMs).toBeLessThanOrEqual(90_000);
    expect(await limitLeft(r)).toBeGreaterThan(87_000);
  });

  it('Retry-After: 120 with MAX_BACKOFF 60 s waits 60 s (clamped)', async () => {
    const r = make();
    const s = await slow(r, 10_000, 60_000, parseRetryAfter('120'));
    expect(s).toMatchObject({ delayMs: 60_000, escalated: true });
    expect(await limitLeft(r)).toBeGreaterThan(58_000);
    expect(await limitLeft(r)).toBeLessThanOrEqual(60_000);
  });

  it('an invalid Retry-After falls back to the escalation: base, then doubled on a repeat', async () => {
    const r = make();
    const first = await slow(r, 200, 60_000, parseRetryAfter('soon'));
    expect(first).toMatchObject({ delayMs: 200, escalated: true, strikes: 1 });
    // Another worker's 429 of the same burst does not escalate.
    expect(await slow(r, 200, 60_000, null)).toMatchObject({ escalated: false });
    await waitFor(async () => (await r.redis.pttl(r.store.keys.slowdown('submit'))) < 0, { timeoutMs: 5000, what: 'the first slow-down to end' });
    expect(await slow(r, 200, 60_000, parseRetryAfter('-5'))).toMatchObject({ delayMs: 400, escalated: true, strikes: 2 });
  });

  it('a longer Retry-After extends a slow-down in force; a shorter one leaves it as it is', async () => {
    const r = make();
    expect(await slow(r, 10_000, 600_000, null)).toMatchObject({ delayMs: 10_000, escalated: true });
    expect(await slow(r, 10_000, 600_000, 30_000)).toMatchObject({ delayMs: 30_000, escalated: true });
    const shorter = await slow(r, 10_000, 600_000, 5_000);
    expect(shorter.escalated).toBe(false);
    expect(shorter.delayMs).toBeGreaterThan(25_000);
    expect(await limitLeft(r)).toBeGreaterThan(25_000);
  });
});
