/**
 * Durations people read are written by one function, `formatDuration` (src/config/units.ts: `950ms`, `12.5s`,
 * `3m20s`, `2h05m`). Trial of issues 10/14, item H: with STALL_AFTER=15s, `batch.stalled` read "no image finished
 * for 0 min", because its text rounded to whole minutes by hand. The class: any message that divides milliseconds
 * into a unit of its own. This test reads every source file for such a hand-made duration, and checks the messages
 * that had one.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatDuration } from '../../src/config/units.js';
import { verifyWebhookSignature } from '../../src/kie/callback.js';
import { batchStalled } from '../../src/notify/events.js';
import { expiryWarning } from '../../src/producer/expiry.js';
import { describeProbe } from '../../src/queue/pause-reason.js';
import { sourceCodeLines } from '../helpers/source-lines.js';

/**
 * A template placeholder that divides by a time unit (or holds a value named in ms, s or minutes) followed by a unit
 * word: `${Math.round(ms / 60_000)} min`, `${timeoutMs} ms`, `${(ms / 1000).toFixed(1)} s`, `${Math.floor(s / 3600)}h`.
 */
const HAND_MADE = [
  /\$\{[^}]*\/\s*\(?(1_?000|60|60_?000|3_?600|3_?600_?000|86_?400_?000)\b[^}]*\}\s?(ms|s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?|d|days?)\b/,
  /\$\{[^}]*(Ms|ms|Seconds|Secs|Minutes|Mins)\b[^}]*\}\s?(ms|s|sec|seconds?|m|min|minutes?|h|hours?)\b/,
];

describe('durations in messages', () => {
  it('no source file but units.ts makes a duration by hand (the simulator imitates kie.ai texts and is left out)', () => {
    const skip = (rel: string) => rel === join('src', 'config', 'units.ts') || rel.startsWith(join('src', 'sim'));
    const found = sourceCodeLines(skip)
      .filter((l) => HAND_MADE.some((re) => re.test(l.text)))
      .map((l) => `${l.where}: ${l.text.trim()}`);
    expect(found).toEqual([]);
  });

  it('the patterns catch the trial sample and its relatives (the scan is not vacuous)', () => {
    for (const line of [
      'no image finished for ${Math.round((at - f.since) / 60_000)} min with',
      'in ${Math.max(0, Math.round(ms / 60_000))} min',
      'no answer within ${this.timeoutMs} ms',
      'within ${(options.deadlineMs ?? 100_000) / 1000} s',
      '`${Math.floor(inS / 3600)}h`',
    ]) {
      expect(HAND_MADE.some((re) => re.test(line)), line).toBe(true);
    }
    expect(HAND_MADE.some((re) => re.test('no image finished for ${formatDuration(at - f.since)} with'))).toBe(false);
  });

  it('the trial: batch.stalled with STALL_AFTER=15s says 15 seconds, not "0 min"', () => {
    const at = Date.parse('2026-11-30T10:00:00Z');
    const e = batchStalled({ batchId: 'b1', since: at - 15_000, stallAfterMs: 15_000, remaining: 7, counts: { polling: 7 } }, at);
    expect(e.text).toBe('Batch b1 stalled: no image finished for 15s with 7 images still to do (check `upscale status`)');
    expect(batchStalled({ batchId: 'b1', since: at - 90 * 60_000, stallAfterMs: 1_800_000, remaining: 1, counts: {} }, at).text).toContain('for 1h30m with 1 image still');
  });

  it('the other messages that had one use formatDuration', () => {
    const now = Date.parse('2026-11-29T20:00:00Z');
    const soon = 'https://b.s3.amazonaws.com/x.png?X-Amz-Date=20261129T195920Z&X-Amz-Expires=60&X-Amz-Signature=ab';
    // 20 s left, submission in 50 s: "0 min" and "1 min" before.
    expect(expiryWarning(soon, now + 50_000, now)?.warning).toMatch(/, in 20s, before its estimated submission in 50s:/);
    const reason = { code: '402', message: 'no credits', at: now - 1000, probe: { kind: 'image' as const, at: now + 45_500, tries: 0, running: false } };
    expect(describeProbe(reason, now)).toContain(`(in ${formatDuration(45_500)})`);
    expect(verifyWebhookSignature({ taskId: 't', timestamp: Math.floor(now / 1000) - 400, signature: 'x', key: 'k', nowMs: now })).toEqual({ ok: false, reason: 'timestamp is 6m40s old' });
  });
});
