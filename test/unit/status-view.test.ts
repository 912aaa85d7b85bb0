import { describe, expect, it } from 'vitest';
import type { LaneStatusMap } from '../../src/queue/lane-status.js';
import type { BatchSummary } from '../../src/results/record.js';
import { describePilot } from '../../src/batch/pilot.js';
import { etaText, formatTime, isBatchFinished, noEtaReason, pilotNext, progressBar, renderBatch, renderLanes, renderStatus, statusJson } from '../../src/results/status-view.js';
import { renderChart } from '../../src/server/batch-chart.js';
import { renderBatchesPage } from '../../src/server/batches-page.js';

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
    expect(text).toContain('no ETA: paused: paused by upscale pause --batch');
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
    expect(text).toContain('2 ambiguous submits');
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
    expect(text).toContain('1 older finished batch not shown');
    expect(text.endsWith('delayed)\n')).toBe(true);
    expect(renderStatus({ batches: [], lanes: lanes() }, { now: NOW, listing: true })).toContain('no batches');
  });

  it('gives the JSON shapes scripts rely on', () => {
    const s = summary();
    expect(statusJson({ batches: [s], lanes: lanes() }, 'b1')).toEqual({ ...s, noEta: null });
    expect(statusJson({ batches: [s], lanes: lanes() })).toEqual({ batches: [{ ...s, noEta: null }], lanes: lanes() });
  });

  it("the batch page's chart says why there is no ETA even before any image finished", () => {
    expect(renderChart({ minutes: [], remaining: 2, now: NOW, etaSeconds: null, perMinute: null, noEta: 'paused: paused by upscale pause --batch' })).toBe(
      '<p class="empty">No image has finished yet; no ETA: paused: paused by upscale pause --batch.</p>',
    );
    expect(renderChart({ minutes: [], remaining: 2, now: NOW, etaSeconds: null, perMinute: null, noEta: null })).toBe('<p class="empty">No image has finished yet.</p>');
  });

  it('a finished batch that is paused shows the pause (images added later are held), in status and on the batches page', () => {
    const counts = { waiting: 0, submitting: 0, polling: 0, succeeded: 2, failed: 0, timed_out: 0, cancelled: 0, held: 0, expired: 0 };
    const s = summary({ total: 2, counts, finishedAt: NOW - MIN, gate: { state: 'paused', reason: 'paused by upscale pause --batch', at: NOW - 1000 } });
    const text = renderStatus({ batches: [s], lanes: lanes() }, { now: NOW });
    expect(text).toMatch(/finished {2}PAUSED/);
    expect(text).toContain('paused by upscale pause --batch — images added to it are held; run `upscale resume --batch b1` to continue');
    const page = renderBatchesPage({ batches: [s], lanes: lanes(), now: NOW });
    expect(page).toContain('<span class="badge done">finished</span> <span class="badge paused">paused</span>');
    expect(page).toContain('images added to it are held');
  });

  it('JSON gives no ETA where the text gives none, and says why (a fresh user saw etaSeconds 9 for a paused batch)', () => {
    const paused = summary({ etaSeconds: 9, gate: { state: 'paused', reason: 'paused by upscale pause --batch', at: NOW } });
    expect(renderStatus({ batches: [paused], lanes: lanes() }, { now: NOW })).toContain('no ETA: paused: paused by upscale pause --batch');
    expect(statusJson({ batches: [paused], lanes: lanes() }, 'b1')).toMatchObject({ etaSeconds: null, noEta: 'paused: paused by upscale pause --batch' });
    expect(statusJson({ batches: [paused], lanes: lanes() })).toMatchObject({ batches: [{ etaSeconds: null, noEta: 'paused: paused by upscale pause --batch' }] });
  });
});

/**
 * Trial of issues 10/14, items E and F: advice and ETAs that no longer apply. E: after cancel or expiry a finished
 * batch still advised "run `upscale approve --batch X` to submit the 0 held images"; F: "ETA 4m24s" while the batch
 * waited for the pilot's approval, "ETA 16s" while the poll lane was paused. The same words reach `upscale status`,
 * the batches page, the batch page's chart and the pilot's notice.
 */
describe('pilot advice and the ETA say what is true now', () => {
  const pilotDone = { images: 3, counts: { succeeded: 3 }, done: true, credits: 30, creditsPerImage: 10, extrapolatedCredits: 200, approvedAt: null };
  const finishedCounts = { waiting: 0, submitting: 0, polling: 0, succeeded: 3, failed: 0, timed_out: 0, cancelled: 17, held: 0, expired: 0 };

  it('E: a batch whose held images were cancelled (or expired) gives no approval advice, in status and on the batches page', () => {
    for (const counts of [finishedCounts, { ...finishedCounts, cancelled: 0, expired: 17 }]) {
      const s = summary({ total: 20, counts, pilot: 3, pilotApprovedAt: null, finishedAt: NOW - MIN, etaSeconds: 0 });
      const text = renderStatus({ batches: [s], lanes: lanes(), pilots: { b1: pilotDone } }, { now: NOW });
      expect(text).toContain('pilot 3 images: 3 succeeded · 10 credits/image → about 200 credits for all 20 images · not approved (nothing held any more)');
      expect(text).not.toMatch(/upscale approve|0 held/);
      const page = renderBatchesPage({ batches: [s], lanes: lanes(), now: NOW, pilots: { b1: pilotDone } });
      expect(page).toContain('not approved (nothing held any more)');
      expect(page).not.toMatch(/upscale approve|0 held/);
      expect(describePilot({ ...pilotDone, extrapolatedRemaining: 0 }, s)).not.toMatch(/upscale approve/);
    }
  });

  it('E: while images are held in an open batch the advice stays, with the count in good grammar', () => {
    const s = summary({ total: 20, counts: { ...finishedCounts, cancelled: 0, held: 1, succeeded: 19 }, pilot: 3, pilotApprovedAt: null });
    expect(pilotNext(s, pilotDone)).toBe('done: run `upscale approve --batch b1` to submit the 1 held image (or `upscale cancel --batch b1`)');
    expect(pilotNext(s, { ...pilotDone, done: false })).toBe('running');
    expect(pilotNext(s, { ...pilotDone, approvedAt: NOW })).toBe('approved');
  });

  it('F: no ETA while the batch waits for the pilot\'s approval (it showed ETA 4m24s)', () => {
    const s = summary({ total: 100, counts: { ...finishedCounts, succeeded: 10, cancelled: 0, held: 90 }, pilot: 10, pilotApprovedAt: null, etaSeconds: 264 });
    const text = renderStatus({ batches: [s], lanes: lanes(), pilots: { b1: { ...pilotDone, images: 10, counts: { succeeded: 10 } } } }, { now: NOW });
    expect(text).toContain('no ETA: waiting for approval of the pilot (90 held: `upscale approve --batch b1`)');
    expect(text).not.toContain('ETA 4m24s');
    const page = renderBatchesPage({ batches: [s], lanes: lanes(), now: NOW });
    expect(page).toContain('<dt>ETA</dt><dd>none: waiting for approval of the pilot (90 held: `upscale approve --batch b1`)</dd>');
    expect(page).not.toContain('4m24s');
    // Once approved, the ETA is back.
    expect(etaText({ ...s, counts: { ...s.counts, held: 0, waiting: 90 }, pilotApprovedAt: NOW }, lanes())).toBe('ETA 4m24s');
  });

  it('the chart gives the batch\'s one ETA, the same as the batches page (it showed "ETA 1h39m at 4.0 images/min" beside 150 s, 157.8/min)', () => {
    const running = summary({ total: 400, counts: { ...finishedCounts, cancelled: 0, succeeded: 6, polling: 394 }, etaSeconds: 150, throughputPerMinute: 157.8 });
    // A batch 40 s old: its finishes sit in the current, partial minute.
    const chart = renderChart({ minutes: [{ minute: Math.floor(NOW / MIN), count: 6 }], remaining: 394, now: NOW, etaSeconds: running.etaSeconds, perMinute: running.throughputPerMinute });
    expect(chart).toContain('394 to go · ETA 2m30s at 157.8 images/min');
    expect(renderBatchesPage({ batches: [running], lanes: lanes(), now: NOW })).toContain('<dd>2m30s</dd>');
    expect(renderChart({ minutes: [{ minute: Math.floor(NOW / MIN), count: 6 }], remaining: 394, now: NOW, etaSeconds: null, perMinute: null })).toContain('394 to go; no ETA yet');
  });

  it('F: no ETA while a lane the remaining images need is paused (it showed ETA 16s with the poll lane paused)', () => {
    const polling = summary({ total: 20, counts: { ...finishedCounts, cancelled: 0, succeeded: 12, polling: 8 }, etaSeconds: 16 });
    const pollPaused = lanes({ poll: { paused: true, reason: { code: 'manual', message: 'paused with upscale pause', at: NOW - MIN }, slowedDown: false, counts: idle } });
    expect(renderStatus({ batches: [polling], lanes: pollPaused }, { now: NOW })).toContain('no ETA: paused: poll lane (manual)');
    expect(renderBatchesPage({ batches: [polling], lanes: pollPaused, now: NOW })).toContain('<dd>none: paused: poll lane (manual)</dd>');
    expect(renderChart({ minutes: [{ minute: Math.floor(NOW / MIN) - 1, count: 12 }], remaining: 8, now: NOW, etaSeconds: 40, perMinute: 12, noEta: noEtaReason(polling, pollPaused) })).toContain('8 to go; no ETA: paused: poll lane (manual)');
    // The submit lane paused does not stop images that are already polling.
    const submitPaused = lanes({ submit: { paused: true, reason: { code: 'credits', message: 'low', at: NOW }, slowedDown: false, counts: idle } });
    expect(etaText(polling, submitPaused)).toBe('ETA 16s');
    // ...but it does stop waiting ones; a paused batch names its own reason.
    expect(etaText(summary(), submitPaused)).toBe('no ETA: paused: submit lane (credits)');
    expect(etaText(summary({ gate: { state: 'paused', reason: 'paused from the dashboard', at: NOW } }), lanes())).toBe('no ETA: paused: paused from the dashboard');
    expect(etaText(summary({ downloadsPending: 3, counts: { ...finishedCounts, cancelled: 0, succeeded: 20 } }), lanes({ download: { paused: true, reason: { code: 'storage', message: 'denied', at: NOW }, slowedDown: false, counts: idle } }))).toBe('no ETA: paused: download lane (storage)');
  });
});
