/**
 * Retry-After (issue 11 point 2): seconds or an HTTP-date, read on any answer, invalid values ignored; the client
 * hands the parsed wait to the queue outcome, which slows the lane down (429/455) or floors a retry (500...).
 */
import { describe, expect, it } from 'vitest';
import { parseRetryAfter } from '../../src/kie/index.js';
import { outcomeFor } from '../../src/queue/outcome.js';
import { sendJson, serverAndClient } from './kie-test-server.js';

const NOW = Date.parse('2026-11-29T12:00:00Z');

describe('parseRetryAfter', () => {
  it('reads whole (and fractional) seconds', () => {
    expect(parseRetryAfter('120', NOW)).toBe(120_000);
    expect(parseRetryAfter(' 0 ', NOW)).toBe(0);
    expect(parseRetryAfter('1.5', NOW)).toBe(1500);
    expect(parseRetryAfter(['7', '9'], NOW)).toBe(7000);
  });

  it('reads an HTTP-date 90 s ahead as 90 s; a date in the past as 0', () => {
    expect(parseRetryAfter(new Date(NOW + 90_000).toUTCString(), NOW)).toBe(90_000);
    expect(parseRetryAfter('Sun, 29 Nov 2026 12:01:30 GMT', NOW)).toBe(90_000);
    expect(parseRetryAfter('Sun, 29 Nov 2026 11:00:00 GMT', NOW)).toBe(0);
  });

  it.each([[undefined], [null], [''], ['soon'], ['-5'], ['10s'], ['2026-13-45'], ['Sun, 99 Foo 2026 GMT'], ['86401'], [new Date(NOW + 2 * 86_400_000).toUTCString()]])(
    '%j is no wait at all (null): absent, invalid, or beyond a day',
    (value) => {
      expect(parseRetryAfter(value, NOW)).toBeNull();
    },
  );
});

describe('the client reads Retry-After on any answer', () => {
  const kie = serverAndClient();

  async function refusal(status: number, body: unknown, retryAfter?: string) {
    kie.server.handle((_req, res) => {
      if (retryAfter !== undefined) res.setHeader('retry-after', retryAfter);
      sendJson(res, status, body);
    });
    return kie.client.getCredits().then(
      () => {
        throw new Error('expected a refusal');
      },
      (e: unknown) => e,
    );
  }

  it('HTTP 429 with Retry-After: 120 → a slow-down of 120 s', async () => {
    const e = await refusal(429, { code: 429, msg: 'Too many requests', data: null }, '120');
    expect(outcomeFor(e)).toEqual({ kind: 'slow-down', reason: 'rate-limited', retryAfterMs: 120_000 });
  });

  it('an HTTP-200 envelope with code 429 and an HTTP-date 90 s ahead → a slow-down of about 90 s', async () => {
    const e = await refusal(200, { code: 429, msg: 'Too many requests', data: null }, new Date(Date.now() + 90_000).toUTCString());
    const o = outcomeFor(e);
    expect(o).toMatchObject({ kind: 'slow-down', reason: 'rate-limited' });
    const ms = (o as { retryAfterMs: number }).retryAfterMs;
    // An HTTP-date has whole seconds: up to 1 s less, and the round trip.
    expect(ms).toBeGreaterThan(88_000);
    expect(ms).toBeLessThanOrEqual(90_000);
  });

  it('a 455 and a 500 carry theirs too; an invalid one is null (the escalation applies)', async () => {
    expect(outcomeFor(await refusal(200, { code: 455, msg: 'Service unavailable', data: null }, '30'))).toEqual({ kind: 'slow-down', reason: 'maintenance', retryAfterMs: 30_000 });
    expect(outcomeFor(await refusal(500, { code: 500, msg: 'Server Error', data: null }, '12'))).toMatchObject({ kind: 'retry', retryAfterMs: 12_000 });
    expect(outcomeFor(await refusal(429, { code: 429, msg: 'Too many requests', data: null }, 'soon'))).toEqual({ kind: 'slow-down', reason: 'rate-limited', retryAfterMs: null });
    expect(outcomeFor(await refusal(429, { code: 429, msg: 'Too many requests', data: null }))).toEqual({ kind: 'slow-down', reason: 'rate-limited', retryAfterMs: null });
  });
});
