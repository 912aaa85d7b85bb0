/**
 * The texts of notification events. Trial of issues 10/14, item I: pausing the poll lane by hand was announced as
 * "Submission paused (poll lane, manual)". A lane's pause names the lane that paused, by what it does, for every
 * lane; the batches it holds up are named as held up, not as paused.
 */
import { describe, expect, it } from 'vitest';
import { resumeAction } from '../../src/batch/watch.js';
import { batchPaused } from '../../src/notify/events.js';
import { LANES, LANE_ACTIVITY } from '../../src/queue/names.js';

const AT = Date.parse('2026-11-30T10:00:00Z');
const manual = (lane: string, batches: string[] = []) =>
  batchPaused({ lane, code: 'manual', message: 'paused with `upscale pause`', since: AT - 1000, batches, action: 'run `upscale resume` to continue' }, AT);

describe('batch.paused texts', () => {
  it('the trial: a manual pause of the poll lane reads "Polling paused (poll lane, manual)"', () => {
    expect(manual('poll').text).toBe('Polling paused (poll lane, manual): paused with `upscale pause` — run `upscale resume` to continue');
  });

  it('every lane is named by what it does', () => {
    expect(LANES.map((lane) => manual(lane).text.split(' (')[0])).toEqual(['Submission paused', 'Polling paused', 'Downloads paused']);
    for (const lane of LANES) expect(manual(lane).text.toLowerCase()).toMatch(new RegExp(`^${LANE_ACTIVITY[lane]} paused \\(${lane} lane, manual\\)`));
  });

  it('the batches a lane pause holds up are listed as held up; a batch-level pause (the pilot) names the batch', () => {
    expect(manual('submit', ['b1']).text).toBe('Submission paused (submit lane, manual): paused with `upscale pause` — holds up batch b1 — run `upscale resume` to continue');
    expect(manual('poll', ['b1', 'b2']).text).toContain('Polling paused (poll lane, manual): paused with `upscale pause` — holds up batches b1, b2 —');
    const pilot = batchPaused({ lane: 'submit', code: 'pilot', message: 'pilot 3 images: 3 succeeded', since: AT, batches: ['b1'], batchId: 'b1', action: 'run `upscale approve --batch b1`' }, AT);
    expect(pilot.text).toBe('Batch b1 paused (pilot): pilot 3 images: 3 succeeded — run `upscale approve --batch b1`');
    expect(pilot.batchId).toBe('b1');
  });
});

describe("a paused lane's notification: what it asks (src/batch/watch.ts resumeAction)", () => {
  it('after upscale pause, nothing to fix: only resume', () => {
    expect(resumeAction({ code: 'manual', message: 'paused by upscale pause' })).toBe('run `upscale resume` when it should go on');
    expect(resumeAction({ code: '401', message: 'kie.ai refused the key' })).toBe('fix the cause, then run `upscale resume`');
    expect(resumeAction({ code: 'breaker', message: 'tripped: … then `upscale resume`' })).toBe('see the message');
  });
});
