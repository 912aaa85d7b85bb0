/**
 * The submit circuit breaker's count (issue 11 point 1), on the shared Redis: consecutive createTask failures of
 * *different* images with the same kie code and message trip it at SUBMIT_BREAKER (default 5), handing back every
 * image of the run; the same image twice counts once, a different failure starts a new run, a success ends it, and
 * 0 turns it off. The example: `500 This field is required` for every image of a batch. Then through the
 * submit lane (in this process, a proxy in front of the simulator refusing createTask): a run of identical `fail`
 * refusals sends the images already recorded failed back to waiting with their meta, held for the batch scheduler.
 */
import { describe, expect, it } from 'vitest';
import { resume } from '../../src/control/index.js';
import { enqueue } from '../../src/producer/index.js';
import { submitJobId } from '../../src/queue/identity.js';
import { getPauseReason } from '../../src/queue/pause-reason.js';
import { breakerSignature, SubmitBreaker, type BreakerImage } from '../../src/queue/submit-breaker.js';
import type { Runtime } from '../../src/runtime.js';
import { waitFor } from '../helpers/redis.js';
import { testRuntimes } from '../helpers/runtime.js';
import { localRigs, waitForRecords } from './preflight-fixtures.js';

const REQUIRED = breakerSignature(500, 'This field is required');
const ENUM = breakerSignature(500, 'output_format is not within the range of allowed options');
const img = (i: number, batchId = 'b1'): BreakerImage => ({ batchId, jobId: `job-${i}`, generation: i % 2 });

describe('SubmitBreaker', () => {
  const runtime = testRuntimes('brk');
  let rt: Runtime;

  function breaker(env: Record<string, string> = {}): SubmitBreaker {
    rt = runtime(env);
    return new SubmitBreaker(rt.redis, rt.store.keys, rt.config.submitBreaker);
  }

  it('SUBMIT_BREAKER defaults to 5: five different images refused with 500 "This field is required" trip it, with all five', async () => {
    const b = breaker();
    expect(rt.config.submitBreaker).toBe(5);
    expect(REQUIRED).toBe('500 This field is required');
    for (let i = 1; i <= 4; i++) expect(await b.failed(img(i), REQUIRED)).toEqual({ tripped: false, run: i });
    const v = await b.failed(img(5, 'b2'), REQUIRED);
    expect(v).toMatchObject({ tripped: true, run: 5, signature: REQUIRED });
    const images = v.tripped ? v.images : [];
    expect([...images].sort((a, c) => a.jobId.localeCompare(c.jobId))).toEqual([img(1), img(2), img(3), img(4), img(5, 'b2')]);
    // A failure with the same signature answered before the lane's pause is in place (sent before the trip) joins it.
    expect(await b.failed(img(6), REQUIRED)).toEqual({ tripped: false, run: 0, joinsTrip: true });
    // Once the pause is in place (tripHandled), the next failure starts counting again.
    await b.tripHandled(REQUIRED);
    expect(await b.failed(img(7), REQUIRED)).toEqual({ tripped: false, run: 1 });
    // A different failure during a trip's window starts its own run.
    expect((await b.failed(img(1), REQUIRED, 1)).tripped).toBe(true);
    expect(await b.failed(img(8), ENUM)).toEqual({ tripped: false, run: 1 });
  });

  it('the same image failing again counts once', async () => {
    const b = breaker();
    for (let n = 0; n < 6; n++) expect((await b.failed(img(1), REQUIRED)).tripped).toBe(false);
    expect(await b.failed(img(2), REQUIRED)).toEqual({ tripped: false, run: 2 });
  });

  it('a different code or message starts a new run; a success ends the run', async () => {
    const b = breaker();
    for (let i = 1; i <= 4; i++) await b.failed(img(i), REQUIRED);
    expect(await b.failed(img(5), ENUM)).toEqual({ tripped: false, run: 1 });
    expect(await b.failed(img(6), breakerSignature(501, 'This field is required'))).toEqual({ tripped: false, run: 1 });
    for (let i = 7; i <= 10; i++) await b.failed(img(i), REQUIRED);
    await b.reset();
    expect(await b.failed(img(11), REQUIRED)).toEqual({ tripped: false, run: 1 });
  });

  it('SUBMIT_BREAKER=3 trips at 3; SUBMIT_BREAKER=0 never trips', async () => {
    const three = breaker({ SUBMIT_BREAKER: '3' });
    await three.failed(img(1), REQUIRED);
    await three.failed(img(2), REQUIRED);
    expect((await three.failed(img(3), REQUIRED)).tripped).toBe(true);
    const off = breaker({ SUBMIT_BREAKER: '0' });
    expect(off.enabled).toBe(false);
    for (let i = 1; i <= 20; i++) expect((await off.failed(img(i), REQUIRED)).tripped).toBe(false);
  });

  it('a probe meeting the signature that tripped it trips again at once (threshold 1)', async () => {
    const b = breaker();
    expect(await b.failed(img(1), REQUIRED, 1)).toMatchObject({ tripped: true, run: 1, images: [img(1)] });
  });
});

describe('a tripped breaker through the submit lane', () => {
  const rigs = localRigs();

  it('five images failed alike (422 "The page does not exist or is not published") go back to waiting, meta kept; after resume all end succeeded', async () => {
    const { rig, proxy } = await rigs.startProxied({ timeScale: 10, env: { OUTPUT_DIR: '', PROBE_COOLDOWN: '10m' } });
    proxy.intercept((method, path) =>
      method === 'POST' && path === '/api/v1/jobs/createTask' ? { status: 200, body: { code: 422, msg: 'The page does not exist or is not published', data: null } } : null,
    );
    const items = Array.from({ length: 6 }, (_, i) => ({ input: rig.image(`brk-${i}`, 40 + i, 30), model: 'topaz/image-upscale' as const, factor: '2' as const, meta: { sku: `SKU-${i}` } }));
    await enqueue(rig.rt, items, { batchId: 'brk' });
    await rig.start({ concurrency: 2, lanes: ['submit', 'poll'] });
    const reason = await waitFor(async () => {
      const r = await getPauseReason(rig.rt.redis, rig.rt.store.keys, 'submit');
      return r?.code === 'breaker' ? r : null;
    }, { timeoutMs: 20_000, what: 'the breaker to pause submission' });
    expect(reason.message).toMatch(/^5 images in a row failed with 422 The page does not exist or is not published\. Submission is paused/);
    const summary = await waitFor(async () => {
      const s = await rig.rt.store.getSummary('brk');
      return s && s.counts.waiting === 6 ? s : null;
    }, { timeoutMs: 20_000, what: 'all 6 back to waiting' });
    expect(summary.counts.failed).toBe(0);
    const records = [];
    for await (const r of rig.rt.store.records('brk')) records.push(r);
    const sentBack = records.filter((r) => r.generation === 1);
    // Those recorded failed before the trip got a new generation and a fresh submit job carrying their meta.
    expect(sentBack.length).toBeGreaterThanOrEqual(4);
    for (const r of sentBack) {
      expect(r).toMatchObject({ state: 'waiting', failCode: null, failMsg: null });
      const job = await rig.rt.queues.submit.getJob(submitJobId(r.jobId, 1));
      expect(job?.data).toMatchObject({ generation: 1, meta: r.meta });
      expect(r.meta.sku).toMatch(/^SKU-\d$/);
    }
    proxy.intercept(null);
    expect((await resume(rig.rt)).resumed.map((l) => l.lane)).toEqual(['submit']);
    const done = await waitForRecords(rig.rt, 'brk', { timeoutMs: 60_000 });
    expect(done.map((r) => r.state)).toEqual(Array(6).fill('succeeded'));
    expect(rig.sim.stats().createAccepted).toBe(6);
    expect(rig.sim.stats().duplicatedInputs).toEqual([]);
  });
});
