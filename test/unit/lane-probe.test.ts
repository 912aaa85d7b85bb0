/**
 * When a paused lane probes (issue 11 point 1): PROBE_COOLDOWN after a 401/402/breaker pause, the next daily reset
 * (KIE_DAILY_RESET, UTC, default midnight) for a 433; and the line people read about it.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { describeProbe, type PauseReason } from '../../src/queue/pause-reason.js';
import { nextDailyReset, nextProbeAt } from '../../src/worker/lane-probe.js';

const at = (iso: string) => Date.parse(iso);
const H = 3_600_000;

describe('probe times', () => {
  it('KIE_DAILY_RESET defaults to UTC midnight and PROBE_COOLDOWN to 5 min; a bad reset time names the variable', () => {
    const c = loadConfig({}, {});
    expect(c.dailyResetMs).toBe(0);
    expect(c.probeCooldownMs).toBe(300_000);
    expect(loadConfig({}, { KIE_DAILY_RESET: '08:30' }).dailyResetMs).toBe(8.5 * H);
    expect(loadConfig({}, { KIE_DAILY_RESET: '23:59:30' }).dailyResetMs).toBe(86_370_000);
    expect(() => loadConfig({}, { KIE_DAILY_RESET: '25:00' })).toThrow(/KIE_DAILY_RESET/);
  });

  it('the next daily reset is strictly after now: today when still ahead, else tomorrow', () => {
    expect(nextDailyReset(at('2026-11-29T17:45:00Z'), 0)).toBe(at('2026-11-30T00:00:00Z'));
    expect(nextDailyReset(at('2026-11-30T00:00:00Z'), 0)).toBe(at('2026-12-01T00:00:00Z'));
    expect(nextDailyReset(at('2026-11-29T07:00:00Z'), 8 * H)).toBe(at('2026-11-29T08:00:00Z'));
    expect(nextDailyReset(at('2026-11-29T09:00:00Z'), 8 * H)).toBe(at('2026-11-30T08:00:00Z'));
    expect(nextDailyReset(at('2026-12-31T23:59:59Z'), 0)).toBe(at('2027-01-01T00:00:00Z'));
  });

  it('433 probes at the next reset; 401, 402 and the breaker after PROBE_COOLDOWN', () => {
    const config = { probeCooldownMs: 300_000, dailyResetMs: 0 };
    const now = at('2026-11-29T17:45:00Z');
    expect(nextProbeAt('433', now, config)).toBe(at('2026-11-30T00:00:00Z'));
    for (const code of ['401', '402', 'breaker']) expect(nextProbeAt(code, now, config)).toBe(now + 300_000);
  });
});

describe('describeProbe', () => {
  const base: PauseReason = { code: '433', message: 'daily limit', at: 0 };
  const now = at('2026-11-29T20:48:00Z');

  it('a waiting probe says when, in how long, and what the last one met', () => {
    const r: PauseReason = { ...base, probe: { kind: 'image', at: at('2026-11-30T00:00:00Z'), tries: 2, running: false, last: '433 The current number of points used by apiKey has exceeded the daily limit' } };
    expect(describeProbe(r, now)).toBe(
      'resumes on its own: next probe (one image) at 2026-11-30 00:00:00 UTC (in 3h12m; 2 tried, last met 433 The current number of points used by apiKey has exceeded the daily limit)',
    );
    const key: PauseReason = { ...base, code: '401', probe: { kind: 'key', at: now + 95_000, tries: 0, running: false } };
    expect(describeProbe(key, now)).toBe('resumes on its own: next probe (one credit call) at 2026-11-29 20:49:35 UTC (in 1m35s)');
  });

  it('a running probe says so; a manual pause has no probe line', () => {
    expect(describeProbe({ ...base, probe: { kind: 'image', at: now, tries: 1, running: true } }, now)).toBe('probing with one image now; 1 tried');
    expect(describeProbe({ code: 'manual', message: 'paused by upscale pause', at: 0 }, now)).toBe('');
  });
});
