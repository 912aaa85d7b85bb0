import { describe, expect, it } from 'vitest';
import type { LaneStatusMap } from '../../src/queue/lane-status.js';
import type { BatchSummary } from '../../src/results/record.js';
import { formatTime, isBatchFinished, progressBar, renderBatch, renderLanes, renderStatus, statusJson } from '../../src/results/status-view.js';

const NOW = Date.UTC(2026, 10, 21, 23, 0, 0);
const MIN = 60_000;

function summary(over: Partial<BatchSummary> = {}): BatchSummary {
  return {
    batchId: 'b1',
    total: 1000,
    counts: { waiting: 300, submitting: 20, polling: 168, succeeded: 500, failed: 10, timed_out: 2, cancelled: 0, held: 0, expired: 0 },
    creditsConsumed: 1024.5,
    createdAt: NOW - 13 * MIN,
    startedAt: NOW - 12 * MIN,
    updatedAt: NOW - 3000,
    finishedAt: null,
    ambiguousSubmits: 0,
    throughputPerMinute: 42.7,
    etaSeconds: 686,
    priority: 'normal',
    gate: null,
    ...over,
  };
}

const idle = { waiting: 0, prioritized: 0, delayed: 0, active: 0, completed: 0, failed: 0 };
function lanes(over: Partial<LaneStatusMap> = {}): LaneStatusMap {
  return {
    submit: { paused: false, reason: null, slowedDown: false, counts: { ...idle, waiting: 300, active: 20 } },
    poll: { paused: false, reason: null, slowedDown: false, counts: { ...idle, delayed: 168 } },
    download: { paused: false, reason: null, slowedDown: false, counts: idle },
    ...over,
  };
}

describe('status rendering', () => {
  it('draws a progress bar of done/total', () => {
    expect(progressBar(0, 10, 10)).toBe('[..........]');
    expect(progressBar(5, 10, 10)).toBe('[#####.....]');
    expect(progressBar(10, 10, 10)).toBe('[##########]');
    expect(progressBar(0, 0, 4)).toBe('[....]');
  });

  it('formats times in UTC with their age', () => {
    expect(formatTime(NOW - 12 * MIN, NOW)).toBe('2026-11-21 22:48:00Z (12m00s ago)');
    expect(formatTime(null, NOW)).toBe('-');
  });

  it('renders a running batch: progress, counts, credits, throughput, ETA and times', () => {
    expect(renderBatch(summary(), { now: NOW, barWidth: 20 })).toBe(
      [
        'batch b1  [##########..........]  512/1000 (51.2%)',
        '  waiting 300 · submitting 20 · polling 168 · succeeded 500 · failed 10 · timed_out 2 · cancelled 0',
        '  credits 1024.5 · 42.7/min · ETA 11m26s',
        '  started 2026-11-21 22:48:00Z (12m00s ago) · updated 2026-11-21 22:59:57Z (3.0s ago)',
      ].join('\n'),
    );
  });

  it('gives a paused batch no ETA (it admits nothing until resumed)', () => {
    const text = renderBatch(summary({ gate: { state: 'paused', reason: 'paused by upscale pause --batch', at: NOW - MIN } }), { now: NOW, barWidth: 10 });
    expect(text).toContain('ETA - (paused)');
    expect(text).not.toMatch(/ETA \d/);
  });

  it('renders a finished batch with how long it took, and ambiguous submits', () => {
    const s = summary({
      counts: { waiting: 0, submitting: 0, polling: 0, succeeded: 990, failed: 10, timed_out: 0, cancelled: 0, held: 0, expired: 0 },
      finishedAt: NOW - 2 * MIN,
      etaSeconds: 0,
      ambiguousSubmits: 2,
    });
    expect(isBatchFinished(s)).toBe(true);
    const text = renderBatch(s, { now: NOW, barWidth: 10 });
    expect(text).toContain('[##########]  1000/1000 (100.0%)  finished');
    expect(text).toContain('took 10m00s');
    expect(text).toContain('2 ambiguous submit(s)');
    expect(isBatchFinished(summary())).toBe(false);
    expect(renderBatch(summary({ throughputPerMinute: null, etaSeconds: null, startedAt: null }), { now: NOW })).toMatch(/throughput - · ETA -\n {2}started - /);
  });

  it('says which lane is paused, why, and how to continue', () => {
    const credits = { code: '402', message: 'kie.ai reports insufficient credits (402: no credits). Add credits, then run `upscale resume`.', at: NOW - 5 * MIN };
    const text = renderLanes(lanes({ submit: { paused: true, reason: credits, slowedDown: false, counts: { ...idle, waiting: 300 } } }), NOW);
    expect(text.split('\n')).toEqual([
      'lanes: submit PAUSED (300 queued, 0 active, 0 delayed) · poll running (0 queued, 0 active, 168 delayed) · download running (0 queued, 0 active, 0 delayed)',
      `submit lane PAUSED: ${credits.message} (since 2026-11-21 22:55:00Z, 5m00s ago)`,
    ]);
    const manual = renderLanes(lanes({ poll: { paused: true, reason: { code: 'manual', message: 'paused by upscale pause', at: NOW - MIN }, slowedDown: false, counts: idle } }), NOW);
    expect(manual).toContain('poll lane PAUSED: paused by upscale pause (since 2026-11-21 22:59:00Z, 1m00s ago) — run `upscale resume` to continue');
    expect(renderLanes(lanes({ download: { paused: true, reason: null, slowedDown: false, counts: idle } }), NOW)).toContain(
      'download lane PAUSED: no reason recorded — run `upscale resume` to continue',
    );
    const bare = renderLanes(lanes({ submit: { paused: true, reason: { code: '401', message: 'key rejected', at: 0 }, slowedDown: false, counts: idle } }), NOW);
    expect(bare).toContain('submit lane PAUSED: 401 key rejected — run `upscale resume` to continue');
    const slowed = renderLanes(lanes({ poll: { paused: false, reason: null, slowedDown: true, counts: idle } }), NOW);
    expect(slowed).toBe('lanes: submit running (300 queued, 20 active, 0 delayed) · poll slowed down after 429/455 (0 queued, 0 active, 0 delayed) · download running (0 queued, 0 active, 0 delayed)');
  });

  it('lists active batches and only the newest finished ones', () => {
    const done = (id: string) => summary({ batchId: id, counts: { waiting: 0, submitting: 0, polling: 0, succeeded: 1000, failed: 0, timed_out: 0, cancelled: 0, held: 0, expired: 0 }, finishedAt: NOW });
    const batches = [summary({ batchId: 'run' }), done('d1'), done('d2'), done('d3')];
    const text = renderStatus({ batches, lanes: lanes() }, { now: NOW, listing: true, maxFinished: 2 });
    expect(text).toContain('batch run ');
    expect(text).toContain('batch d1 ');
    expect(text).toContain('batch d2 ');
    expect(text).not.toContain('batch d3 ');
    expect(text).toContain('1 older finished batch(es) not shown');
    expect(text.endsWith('delayed)\n')).toBe(true);
    expect(renderStatus({ batches: [], lanes: lanes() }, { now: NOW, listing: true })).toContain('no batches');
  });

  it('gives the JSON shapes scripts rely on', () => {
    const s = summary();
    expect(statusJson({ batches: [s], lanes: lanes() }, 'b1')).toBe(s);
    expect(statusJson({ batches: [s], lanes: lanes() })).toEqual({ batches: [s], lanes: lanes() });
  });
});
