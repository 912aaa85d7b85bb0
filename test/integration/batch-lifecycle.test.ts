/**
 * Completion window, pilot and credit runway, each end to end with the lanes, the batch watch and the simulator
 * (in-process workers at a compressed time scale).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { deadlineWarning, parseDeadline, readBudgetShare, setBatchDeadline, windowFit } from '../../src/batch/deadline.js';
import { declarePilot, pilotOutcome, spread, startPilot } from '../../src/batch/pilot.js';
import { approve, cancel, getStatus } from '../../src/control/index.js';
import { recentEvents } from '../../src/notify/index.js';
import { enqueueLines } from '../../src/producer/index.js';
import { getPauseReason } from '../../src/queue/pause-reason.js';
import type { ResultRecord } from '../../src/results/record.js';
import { renderStatus } from '../../src/results/status-view.js';
import { startWorkers } from '../../src/worker/index.js';
import { answeredForRunway, getRunway, pauseForCredits, refreshBalance, releaseRunway, takeFromRunway, watchRunway } from '../../src/worker/runway.js';
import { waitFor } from '../helpers/redis.js';
import { startLocalRig, type LocalRig } from './preflight-fixtures.js';

let rig: LocalRig | null = null;
afterEach(async () => {
  await rig?.stop();
  rig = null;
});

const WATCH = { tickMs: 50, watchEveryMs: 100 };

async function records(r: LocalRig, batchId: string): Promise<ResultRecord[]> {
  const out: ResultRecord[] = [];
  for await (const rec of r.rt.store.records(batchId)) out.push(rec);
  return out;
}

async function finalized(r: LocalRig, batchId: string, timeoutMs = 60_000) {
  return waitFor(async () => {
    const s = await r.rt.store.getSummary(batchId);
    return s?.finalizedAt ? s : null;
  }, { timeoutMs, intervalMs: 100, what: `batch ${batchId} finalized` });
}

function lines(r: LocalRig, n: number, tag: string) {
  return Array.from({ length: n }, (_, i) => ({ line: i + 1, input: r.image(`${tag}${i}`, 64, 48) }));
}

describe('completion window (--deadline)', () => {
  it('parses durations and dates, refusing what is unclear, and tells whether the window fits', () => {
    const now = Date.parse('2026-11-29T12:00:00Z');
    expect(parseDeadline('24h', now)).toBe(now + 86_400_000);
    expect(parseDeadline('1d12h', now)).toBe(now + 1.5 * 86_400_000);
    expect(parseDeadline('2026-12-01T06:00Z', now)).toBe(Date.parse('2026-12-01T06:00:00Z'));
    expect(parseDeadline('2026-12-01T07:00+01:00', now)).toBe(Date.parse('2026-12-01T06:00:00Z'));
    expect(parseDeadline('2026-12-01', now)).toBe(Date.parse('2026-12-01T00:00:00Z'));
    expect(() => parseDeadline('2026-12-01T06:00', now)).toThrow(/no time zone/);
    expect(() => parseDeadline('2026-11-01T06:00Z', now)).toThrow(/in the past/);
    expect(() => parseDeadline('soon', now)).toThrow(/neither a duration/);
    expect(() => parseDeadline('24', now)).toThrow(/neither a duration/);
    // 100,000 images at 20 per 10 s need 50,000 s (13h53m): a 12 h window leaves about 13,600 to expire.
    const fit = windowFit({ images: 100_000, ahead: 0, createLimit: { max: 20, durationMs: 10_000 }, deadlineAt: now + 12 * 3_600_000, now });
    expect(fit).toMatchObject({ neededMs: 50_000_000, fits: false, wouldExpire: 13_600 });
    expect(windowFit({ images: 1000, ahead: 5000, createLimit: { max: 20, durationMs: 10_000 }, deadlineAt: now + 3_600_000, now }).fits).toBe(true);
    expect(windowFit({ images: 1000, ahead: 7000, createLimit: { max: 20, durationMs: 10_000 }, deadlineAt: now + 3_600_000, now }).wouldExpire).toBe(800);
  });

  it('the estimate shares the budget as the scheduler does (weights 4:2:1, urgent first), not FIFO behind every queued image', () => {
    const now = Date.parse('2026-11-29T12:00:00Z');
    const createLimit = { max: 20, durationMs: 10_000 };
    const deadlineAt = now + 30_000;
    const other = [{ held: 100, priority: 'normal' as const }];
    // The trial: 100 images of another batch queued; a 10-image batch with a 30 s deadline was told "about 10 images
    // would expire" (FIFO: 110 images need 55 s). At an equal share it gets 1 per second: 10 s.
    const ten = windowFit({ images: 10, ahead: 2, competitors: other, priority: 'normal', createLimit, deadlineAt, now });
    expect(ten).toMatchObject({ fits: true, wouldExpire: 0, neededMs: 11_000 });
    // A 1-image urgent batch goes first outright: right after the 2 already admitted (1 s), half a second.
    expect(windowFit({ images: 1, ahead: 2, competitors: other, priority: 'urgent', createLimit, deadlineAt, now })).toMatchObject({ fits: true, neededMs: 1_500 });
    // low against high gets 1/5 of the budget (0.4/s): 10 images need 25 s, 8 s hold 3.
    const low = windowFit({ images: 10, ahead: 0, competitors: [{ held: 100, priority: 'high' }], priority: 'low', createLimit, deadlineAt: now + 8_000, now });
    expect(low).toMatchObject({ neededMs: 25_000, wouldExpire: 7 });
    // Urgent batches elsewhere go first: 40 urgent images (20 s), then an equal share with the normal one.
    expect(windowFit({ images: 10, ahead: 0, competitors: [{ held: 40, priority: 'urgent' }, ...other], priority: 'normal', createLimit, deadlineAt, now })).toMatchObject({ neededMs: 30_000, fits: true });
    // A rival that runs out leaves the whole budget: 4 normal images beside ours, then ours alone.
    expect(windowFit({ images: 10, ahead: 0, competitors: [{ held: 4, priority: 'normal' }], createLimit, deadlineAt, now }).neededMs).toBe(7_000);
    // This batch's images already waiting go before this enqueue's.
    expect(windowFit({ images: 10, ahead: 0, own: 50, createLimit, deadlineAt, now })).toMatchObject({ neededMs: 30_000, fits: true });
    expect(windowFit({ images: 10, ahead: 0, own: 55, createLimit, deadlineAt, now })).toMatchObject({ wouldExpire: 5 });
  });

  it('the warning names the share and counts in good grammar ("about 1 image would expire")', () => {
    const now = Date.parse('2026-11-29T12:00:00Z');
    const createLimit = { max: 20, durationMs: 10_000 };
    const share = { admitted: 1, own: 0, competitors: [{ batchId: 'bulk', held: 100, priority: 'normal' as const }] };
    const fit = windowFit({ images: 1, ahead: 1, competitors: share.competitors, priority: 'normal', createLimit, deadlineAt: now + 400, now });
    expect(fit.wouldExpire).toBe(1);
    expect(deadlineWarning(fit, { images: 1, share, priority: 'normal', createLimit })).toBe(
      'the deadline cannot fit: 1 image needs about 1.5s at 20 per 10s (sharing it with 1 other batch of 100 images; this one at priority normal, weights high 4 : normal 2 : low 1, urgent first; after 1 image already admitted), and the deadline is in 400ms: about 1 image would expire',
    );
    expect(deadlineWarning(windowFit({ images: 1, ahead: 0, createLimit, deadlineAt: now + 60_000, now }), { images: 1, share, priority: 'normal', createLimit })).toBeNull();
  });

  it('the trial: with 100 images of another batch queued, a 10-image batch and a 1-image urgent one, both with a 30 s window (scaled), are not warned, and the scheduler serves them as the estimate assumes', async () => {
    // Time scale 10: the create budget is 20 per second; 30 s of kie.ai time is 3 s.
    const r = (rig = await startLocalRig({ timeScale: 10 }));
    await enqueueLines(r.rt, lines(r, 100, 'bulk'), { batchId: 'bulk', model: 'topaz/image-upscale', factor: '2' });
    const createLimit = r.rt.config.createLimit;
    for (const [batch, n, priority] of [['small', 10, 'normal'], ['rush', 1, 'urgent']] as const) {
      const deadlineAt = Date.now() + 3_000;
      const share = await readBudgetShare(r.rt, batch);
      await enqueueLines(r.rt, lines(r, n, batch), { batchId: batch, model: 'topaz/image-upscale', factor: '2', priority });
      const fit = windowFit({ images: n, ahead: share.admitted, own: share.own, competitors: share.competitors, priority, createLimit, deadlineAt, now: Date.now() });
      expect(deadlineWarning(fit, { images: n, share, priority, createLimit }), batch).toBeNull();
      // The FIFO estimate (everything queued first) said they would expire.
      expect(windowFit({ images: n, ahead: share.admitted + share.competitors.reduce((x, c) => x + c.held, 0), createLimit, deadlineAt, now: Date.now() }).fits, batch).toBe(false);
    }
    await r.start({ concurrency: 8, watch: WATCH });
    const sent = async (batch: string) =>
      waitFor(async () => {
        const rs = await records(r, batch);
        return rs.every((x) => x.submittedAt !== null) ? rs.map((x) => x.submittedAt as number) : null;
      }, { timeoutMs: 60_000, intervalMs: 50, what: `every image of ${batch} submitted` });
    const [small, rush] = [await sent('small'), await sent('rush')];
    const bulk = (await records(r, 'bulk')).map((x) => x.submittedAt).filter((t): t is number => t !== null);
    // What the estimate assumes, whatever the machine's speed: at an equal share 'small' is through after about as
    // many bulk images as its own 10 (plus the few admitted or started before it arrived), not after all 100 (FIFO);
    // 'rush' goes first outright.
    const bulkBefore = (t: number) => bulk.filter((b) => b < t).length;
    expect(bulkBefore(Math.max(...small))).toBeLessThanOrEqual(30);
    expect(bulkBefore(Math.max(...rush))).toBeLessThanOrEqual(20);
  });

  it('images not submitted by the deadline end expired (nothing paid); submitted ones finish; summary, files and one event', async () => {
    const r = (rig = await startLocalRig({ env: { KIE_CREATE_LIMIT: '1/400ms' } }));
    const batch = 'dl-1';
    await setBatchDeadline(r.rt, batch, Date.now() + 1500);
    await enqueueLines(r.rt, lines(r, 12, 'dl'), { batchId: batch, model: 'topaz/image-upscale', factor: '2' });
    await r.start({ concurrency: 2, watch: WATCH });
    const s = await finalized(r, batch);
    const all = await records(r, batch);
    const expired = all.filter((x) => x.state === 'expired');
    const succeeded = all.filter((x) => x.state === 'succeeded');
    expect(succeeded.length).toBeGreaterThan(0);
    expect(expired.length).toBeGreaterThan(0);
    expect(succeeded.length + expired.length).toBe(12);
    for (const x of expired) expect(x).toMatchObject({ failCode: 'expired', submitAttempts: 0, taskId: null });
    expect(r.sim.stats().createAccepted).toBe(succeeded.length);
    expect(s.counts.expired).toBe(expired.length);
    const file = await readFile(join(r.outputDir, batch, 'results.jsonl'), 'utf8');
    expect(file.split('\n').filter((l) => l.includes('"state":"expired"'))).toHaveLength(expired.length);
    const events = (await recentEvents(r.rt, { batchId: batch, limit: 50 })).map((e) => e.event.type);
    expect(events.filter((t) => t === 'batch.expired')).toHaveLength(1);
    expect(events.filter((t) => t === 'batch.completed')).toHaveLength(1);
  });
});

describe('pilot (--pilot N)', () => {
  it('spreads the pilot evenly over the input', () => {
    expect(spread(20, 3)).toEqual([3, 10, 16]);
    expect(spread(2, 5)).toEqual([0, 1]);
    expect(spread(100_000, 4)).toEqual([12_500, 37_500, 62_500, 87_500]);
  });

  it('holds the rest until approval, shows the outcome and the extrapolated total, then finishes the batch', async () => {
    const r = (rig = await startLocalRig());
    const batch = 'pi-1';
    await declarePilot(r.rt, batch, 3);
    await enqueueLines(r.rt, lines(r, 20, 'pi'), { batchId: batch, model: 'topaz/image-upscale', factor: '2' });
    expect(await startPilot(r.rt, batch, 3)).toBe(3);
    expect(await startPilot(r.rt, batch, 3)).toBe(0); // a re-run releases nothing more
    await r.start({ concurrency: 4, watch: WATCH });
    const outcome = await waitFor(async () => {
      const p = await pilotOutcome(r.rt, batch);
      return p?.done ? p : null;
    }, { timeoutMs: 60_000, what: 'the pilot to finish' });
    expect(outcome).toMatchObject({ images: 3, counts: { succeeded: 3 }, credits: 30, creditsPerImage: 10, extrapolatedCredits: 200, extrapolatedRemaining: 170 });
    const pilotLines = (await records(r, batch)).filter((x) => x.state === 'succeeded').map((x) => x.line).sort((a, b) => (a ?? 0) - (b ?? 0));
    expect(pilotLines).toEqual([4, 11, 17]);
    // A late image waits behind the pilot too.
    await enqueueLines(r.rt, [{ line: 1, input: r.image('late', 64, 48) }], { batchId: batch, model: 'topaz/image-upscale', factor: '2' });
    const paused = await waitFor(async () => (await recentEvents(r.rt, { batchId: batch })).find((e) => e.event.type === 'batch.paused'), { what: 'the pilot notice' });
    expect(paused.event.data).toMatchObject({ reason: { code: 'pilot' }, pilot: { creditsPerImage: 10 } });
    expect(paused.event.text).toMatch(/upscale approve --batch pi-1/);
    const snapshot = await getStatus(r.rt, { batchId: batch });
    expect(snapshot.batches[0]?.counts.held).toBe(18);
    expect(renderStatus(snapshot, { now: Date.now() })).toMatch(/pilot 3 images: 3 succeeded · 10 credits\/image → about 210 credits for all 21 images · done: run `upscale approve --batch pi-1`/);
    expect(r.sim.stats().createAccepted).toBe(3);
    expect((await r.rt.store.getSummary(batch))?.finalizedAt).toBeNull();

    expect(await approve(r.rt, batch)).toEqual({ released: 18, alreadyApproved: false });
    const s = await finalized(r, batch);
    expect(s.counts.succeeded).toBe(21);
    expect(r.sim.stats().createAccepted).toBe(21);
    expect(await approve(r.rt, batch)).toEqual({ released: 0, alreadyApproved: true });
    await expect(approve(r.rt, 'no-such-batch')).rejects.toThrow(/no batch named/);
  });

  it('cancel ends a pilot: the held images are cancelled, never submitted', async () => {
    const r = (rig = await startLocalRig());
    const batch = 'pi-2';
    await declarePilot(r.rt, batch, 1);
    await enqueueLines(r.rt, lines(r, 5, 'pc'), { batchId: batch, model: 'topaz/image-upscale', factor: '2' });
    await startPilot(r.rt, batch, 1);
    await r.start({ concurrency: 2, watch: WATCH });
    await waitFor(async () => (await pilotOutcome(r.rt, batch))?.done, { timeoutMs: 60_000, what: 'the pilot' });
    expect((await cancel(r.rt, batch)).cancelled).toBe(4);
    const s = await finalized(r, batch);
    expect(s.counts).toMatchObject({ succeeded: 1, cancelled: 4, held: 0 });
    expect(r.sim.stats().createAccepted).toBe(1);
  });
});

describe('credit runway', () => {
  it('pauses with reason credits before any 402, says credits.low, and resumes by itself once credits arrive', async () => {
    const r = (rig = await startLocalRig({ sim: { credits: 55 }, env: { CREDITS_CHECK_INTERVAL: '300ms' } }));
    const batch = 'rw-1';
    await enqueueLines(r.rt, lines(r, 10, 'rw'), { batchId: batch, model: 'topaz/image-upscale', factor: '2' });
    const started = Date.now();
    await r.start({ concurrency: 4, watch: WATCH });
    const second = await startWorkers(r.rt, { concurrency: 2, lanes: ['submit'], watch: WATCH });
    try {
      const reason = await waitFor(() => getPauseReason(r.rt.redis, r.rt.store.keys, 'submit'), { timeoutMs: 30_000, what: 'the credits pause' });
      expect(reason.code).toBe('credits');
      expect(reason.message).toMatch(/about 5 credits left, below this image's 10/);
      await waitFor(async () => ((await r.rt.store.getSummary(batch))?.counts.succeeded ?? 0) === 5, { timeoutMs: 60_000, what: 'the five paid images' });
      const low = await waitFor(async () => (await recentEvents(r.rt)).find((e) => e.event.type === 'credits.low'), { what: 'credits.low' });
      // First noticed at the watch's first read: 55 credits against 10 images priced at topaz ×2's typical case (4K,
      // 20), or, on a loaded machine where five images were sent before that read, the 5 left after them.
      expect(low.event.text).toMatch(/^Credits low: (55 left, the waiting images need about 200 — credits for about 2|5 left, the waiting images need about \d+ — credits for about 0) more images$/);
      const runway = await waitFor(async () => {
        const w = await getRunway(r.rt);
        return w?.balance === 5 ? w : null;
      }, { what: 'the balance after five images' });
      // Measured now: 10 credits per image; 5 waiting need 50; 5 left cover none.
      await waitFor(async () => (await getRunway(r.rt))?.needed === 50, { what: 'the runway from measured prices' });
      expect(renderStatus(await getStatus(r.rt), { now: Date.now() })).toMatch(/credits: 5 \(read .* ago\) · then 5 waiting images needed about 50 · credits for about 0 more images/);
      expect(runway.balance).toBe(5);
      expect(r.sim.stats().rejected402).toBe(0);
      r.sim.setCredits(1000);
      const s = await finalized(r, batch);
      expect(s.counts.succeeded).toBe(10);
      expect(r.sim.stats().rejected402).toBe(0);
      // One read per interval for both sets of workers together (plus each start's first read).
      const elapsed = Date.now() - started;
      expect(r.sim.stats().creditChecks).toBeLessThanOrEqual(Math.ceil(elapsed / 300) + 2);
    } finally {
      await second.close(3000);
    }
  });

  it('the trial: 305 credits, 10 per image, two workers, reads every 5 s showing 115 then 35: one pause, no flapping, one error line', async () => {
    const logs: { level: number; msg: string; resumeAbove?: number }[] = [];
    const log = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as (typeof logs)[number]) });
    const r = (rig = await startLocalRig({ sim: { credits: 305 }, env: { CREDITS_CHECK_INTERVAL: '5s', KIE_CREATE_LIMIT: '20/10s' }, log }));
    const batch = 'rw-g';
    await enqueueLines(r.rt, lines(r, 40, 'rwg'), { batchId: batch, model: 'topaz/image-upscale', factor: '2' });
    const open = async () => (await r.rt.store.listBatches(Date.now())).filter((b) => b.finalizedAt === null);
    /** The next read of the watch, as if CREDITS_CHECK_INTERVAL (5 s) had passed. */
    const nextRead = async () => {
      await r.rt.redis.del(r.rt.store.keys.creditReadLock);
      await watchRunway(r.rt, await open(), Date.now());
    };
    const reasonAt = async () => (await getPauseReason(r.rt.redis, r.rt.store.keys, 'submit'))?.at ?? null;
    await nextRead(); // 305
    // Two workers take 10 credits per image, alternately, until the runway is short: 30 sends, then a pause.
    const taken: string[] = [];
    let shortAt = -1;
    for (let i = 0; i < 32; i++) {
      const id = `w${i % 2}-${i}`;
      const d = await takeFromRunway(r.rt, id, 10);
      if (d.ok) {
        taken.push(id);
        continue;
      }
      shortAt = shortAt < 0 ? i : shortAt;
      await expect(pauseForCredits(r.rt, d.left, 10)).rejects.toThrow();
    }
    expect(taken).toHaveLength(30);
    expect(shortAt).toBe(30);
    const pausedAt = await reasonAt();
    expect(pausedAt).not.toBeNull();
    expect(await r.rt.queues.submit.isPaused()).toBe(true);
    const reason = await getPauseReason(r.rt.redis, r.rt.store.keys, 'submit');
    expect(reason).toMatchObject({ code: 'credits', resumeAbove: 210 });
    expect(reason?.message).toMatch(/shows 210 credits free beyond the sends in flight, or enough for every waiting image/);

    // 19 created (charged by kie.ai), 11 still in flight: the read shows 115, of which 5 are free.
    for (const id of taken.slice(0, 19)) await answeredForRunway(r.rt, id);
    r.sim.setCredits(115);
    await nextRead();
    expect((await getRunway(r.rt))?.balance).toBe(115);
    expect(await r.rt.queues.submit.isPaused(), 'a read of 115 with 110 in flight does not resume').toBe(true);
    // 8 more created, 3 in flight: the read shows 35, 5 free.
    for (const id of taken.slice(19, 27)) await answeredForRunway(r.rt, id);
    r.sim.setCredits(35);
    await nextRead();
    expect(await r.rt.queues.submit.isPaused(), 'a read of 35 with 30 in flight does not resume').toBe(true);
    // The rest created; even 5 free after nothing is in flight is far below the threshold: still paused, same pause.
    for (const id of taken.slice(27)) await answeredForRunway(r.rt, id);
    r.sim.setCredits(5);
    await nextRead();
    expect(await r.rt.queues.submit.isPaused()).toBe(true);
    expect(await reasonAt()).toBe(pausedAt);
    // Credits arrive: one resume.
    r.sim.setCredits(1000);
    await nextRead();
    expect(await r.rt.queues.submit.isPaused()).toBe(false);
    expect(await getPauseReason(r.rt.redis, r.rt.store.keys, 'submit')).toBeNull();

    const paused = logs.filter((l) => l.msg === 'submission paused: credits would run out');
    expect(paused.map((l) => l.level)).toEqual([50]);
    expect(logs.filter((l) => l.msg === 'credits pause already in force; image waits').map((l) => l.level)).toEqual([20]);
    expect(logs.filter((l) => l.msg === 'credits available again: submission resumed')).toHaveLength(1);
    expect(logs.filter((l) => l.level >= 50)).toHaveLength(1);
  });

  it('a reservation not sent after all is given back at once', async () => {
    const r = (rig = await startLocalRig({ sim: { credits: 100 }, env: { CREDITS_CHECK_INTERVAL: '5s' } }));
    await refreshBalance(r.rt);
    expect(await takeFromRunway(r.rt, 'a', 60)).toEqual({ ok: true });
    expect(await takeFromRunway(r.rt, 'b', 60)).toMatchObject({ ok: false, left: 40 });
    await releaseRunway(r.rt, 'a'); // e.g. its batch was paused before the send
    await releaseRunway(r.rt, 'a'); // twice: nothing more
    expect((await getRunway(r.rt))?.spent).toBe(0);
    expect(await takeFromRunway(r.rt, 'b', 60)).toEqual({ ok: true });
  });
});
