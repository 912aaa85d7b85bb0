/**
 * The pipeline under the faults ARCHITECTURE.md promises to survive: workers killed mid-batch and between
 * createTask and its checkpoint, 429 storms, a 455 window, 401 and 402. Real worker processes, the simulator at ×10.
 */
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { enqueue } from '../../src/producer/index.js';
import { getPauseReason } from '../../src/queue/pause-reason.js';
import { buildApp } from '../../src/server/app.js';
import { runUpscale } from '../helpers/processes.js';
import { batchRecords, expectNoDoublePayment, startRig, TOPAZ, topazImages, waitForBatch, type Rig } from '../helpers/pipeline.js';
import { waitFor } from '../helpers/redis.js';

describe('pipeline under faults', () => {
  let rig: Rig | undefined;
  afterEach(async () => {
    await rig?.stop();
    rig = undefined;
  });

  it('completes a batch when a worker is SIGKILLed mid-batch, paying for nothing twice', async () => {
    rig = await startRig({ timeScale: 10 });
    const [w1] = await Promise.all([rig.startWorker(), rig.startWorker()]);
    await enqueue(rig.rt, topazImages(rig, 80, 'kill'), { batchId: 'kill' });
    await waitFor(async () => (await rig!.rt.store.getSummary('kill'))!.counts.polling >= 10, { what: '10 tasks in flight' });
    await w1.stop('SIGKILL');
    await rig.startWorker();
    const summary = await waitForBatch(rig.rt, 'kill');
    expect(summary.counts.succeeded).toBe(80);
    const recs = await batchRecords(rig, 'kill');
    expectNoDoublePayment(rig, recs);
    // Every image was created once; an attempt the killed worker had marked (`sendingAt`) is ambiguous to the run
    // that takes over, whether or not it reached kie.ai before the kill (the mark is written a round trip before the
    // send), so it may or may not have made a second task: between 80 and 80 + ambiguous, and per input above.
    const created = rig.sim.stats().createAccepted;
    const seen = JSON.stringify({ created, ambiguous: summary.ambiguousSubmits, counts: summary.counts });
    expect(created, seen).toBeGreaterThanOrEqual(80);
    expect(created, seen).toBeLessThanOrEqual(80 + summary.ambiguousSubmits);
  });

  it('resumes from the checkpoint after a crash between checkpoint and poll job: no second createTask', async () => {
    rig = await startRig({ timeScale: 10 });
    // One job at a time, so no other createTask is in flight when the process dies.
    const crashing = await rig.startWorker(['--concurrency', '1'], { UPSCALE_CRASH_AT: 'after-checkpoint' });
    await enqueue(rig.rt, topazImages(rig, 3, 'ckpt'), { batchId: 'ckpt' });
    const exit = await crashing.exited;
    expect(exit.signal).toBe('SIGKILL');
    await rig.startWorker();
    const summary = await waitForBatch(rig.rt, 'ckpt');
    expect(summary.counts.succeeded).toBe(3);
    expect(rig.sim.stats().duplicatedInputs).toEqual([]);
    expect(rig.sim.stats().createAccepted).toBe(3);
    expect(summary.ambiguousSubmits).toBe(0);
  });

  it('records an ambiguous submit after a crash between createTask and its checkpoint', async () => {
    rig = await startRig({ timeScale: 10 });
    const crashing = await rig.startWorker(['--concurrency', '1'], { UPSCALE_CRASH_AT: 'after-create' });
    await enqueue(rig.rt, topazImages(rig, 1, 'amb'), { batchId: 'amb' });
    expect((await crashing.exited).signal).toBe('SIGKILL');
    await rig.startWorker();
    const summary = await waitForBatch(rig.rt, 'amb');
    const [r] = await batchRecords(rig, 'amb');
    expect(r).toMatchObject({ state: 'succeeded', ambiguousSubmits: 1, submitAttempts: 2 });
    expect(summary.ambiguousSubmits).toBe(1);
    expect(rig.sim.stats().perInput[r!.input]).toBe(2);
  });

  it('with callbacks on, a crash between createTask and its checkpoint waits for the callback instead of paying again', async () => {
    // The task ends within seconds (kie time): its callback must come well inside the wait for it (4 × the longest
    // poll interval without duration samples), also on a loaded machine where the callback's delivery is slow.
    const quick = { medianMs: 3000, p95Ms: 6000 };
    rig = await startRig({
      timeScale: 10,
      sim: { webhookHmacKey: 'whk-crash', latency: { [TOPAZ]: quick } },
      env: { KIE_WEBHOOK_HMAC_KEY: 'whk-crash' },
    });
    const app = buildApp(rig.rt, { logger: pino({ level: 'silent' }) });
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
      const crashing = await rig.startWorker(['--concurrency', '1'], { UPSCALE_CRASH_AT: 'after-create', PUBLIC_BASE_URL: url });
      await enqueue(rig.rt, topazImages(rig, 1, 'cbwait'), { batchId: 'cbwait' });
      expect((await crashing.exited).signal).toBe('SIGKILL');
      await rig.startWorker([], { PUBLIC_BASE_URL: url });
      await waitForBatch(rig.rt, 'cbwait');
      const [r] = await batchRecords(rig, 'cbwait');
      // kie.ai's callback re-attached the lost taskId: one task, one payment, nothing ambiguous left.
      expect(r).toMatchObject({ state: 'succeeded', submitAttempts: 1, ambiguousSubmits: 0 });
      expect(rig.sim.stats().perInput[r!.input]).toBe(1);
      expect(rig.sim.tasks()[0]!.taskId).toBe(r!.taskId);
    } finally {
      await app.close();
    }
  });

  // The exact send gate alone drew 46-68 429s for 40 images here (it sent the configured budget again after every
  // slow-down); the max it learns from refusals (sliding-gate.ts) keeps the next bursts within the real budget.
  it('backs every worker off together in a 429 storm, and nothing fails', async () => {
    // The simulator's create budget is below the configured one: 429s are certain.
    rig = await startRig({ timeScale: 10, sim: { createLimit: { max: 6, durationMs: 10_000 } } });
    await Promise.all([rig.startWorker(), rig.startWorker()]);
    await enqueue(rig.rt, topazImages(rig, 40, 'storm'), { batchId: 'storm' });
    const summary = await waitForBatch(rig.rt, 'storm');
    expect(summary.counts.succeeded).toBe(40);
    const stats = rig.sim.stats();
    expect(stats.createRejected429).toBeGreaterThan(0);
    // Slowing everyone down keeps the 429s to a fraction of the images; hammering would multiply them. The first
    // burst can draw 20 - 6 = 14; after it the gate's learned max fits the real budget, and climbing back costs at
    // most one 429 per RECOVER_WINDOWS windows (about 2 in this run): 20 leaves room for a loaded machine.
    expect(stats.createRejected429).toBeLessThanOrEqual(20);
    expect(stats.duplicatedInputs).toEqual([]);
    const recs = await batchRecords(rig, 'storm');
    expect(recs.every((r) => r.state === 'succeeded')).toBe(true);
    const counters = await rig.rt.redis.hgetall(rig.rt.store.keys.counters);
    expect(Object.keys(counters).some((k) => k.startsWith('upscale_slowdowns_total') && k.includes('rate-limited'))).toBe(true);
  });

  it('waits out a 455 maintenance window without failing anything', async () => {
    rig = await startRig({ timeScale: 10 });
    await rig.startWorker();
    await enqueue(rig.rt, topazImages(rig, 30, 'maint'), { batchId: 'maint' });
    await waitFor(() => rig!.sim.stats().createAccepted >= 5, { what: '5 creates' });
    rig.sim.maintenanceWindow(15_000); // 1.5 s at ×10
    const summary = await waitForBatch(rig.rt, 'maint');
    expect(summary.counts.succeeded).toBe(30);
    expect(rig.sim.stats().rejected455).toBeGreaterThan(0);
    expect(rig.sim.stats().duplicatedInputs).toEqual([]);
  });

  it('pauses submission when the credits run out (the runway before a 402, or the 402), keeps the rest waiting, and continues after `upscale resume`', async () => {
    rig = await startRig({ timeScale: 10, sim: { credits: 50 } }); // five 2K topaz upscales at 10 credits
    await rig.startWorker();
    await enqueue(rig.rt, topazImages(rig, 20, 'credits'), { batchId: 'credits' });
    await waitFor(async () => await rig!.rt.queues.submit.isPaused(), { what: 'submit lane paused' });
    const reason = await getPauseReason(rig.rt.redis, rig.rt.store.keys, 'submit');
    // The credit runway (src/worker/runway.ts) usually pauses first, from the balance it read; a 402 from kie.ai
    // pauses the same way when it does not.
    expect(['credits', '402']).toContain(reason?.code);
    expect(reason?.message).toMatch(/credits/);
    const status = await runUpscale(['status', '--json'], rig.env);
    expect(status.stdout).toMatch(/"code":"(credits|402)"/);
    const before = await rig.rt.store.getSummary('credits');
    expect(before!.counts.failed).toBe(0);
    expect(before!.counts.waiting).toBeGreaterThan(0);

    rig.sim.setCredits(100_000);
    const resumed = await runUpscale(['resume'], rig.env);
    expect(resumed.code).toBe(0);
    const summary = await waitForBatch(rig.rt, 'credits');
    expect(summary.counts.succeeded).toBe(20);
    expect(rig.sim.stats().duplicatedInputs).toEqual([]);
  });

  it('pauses on 401 with a fix-it reason; a worker with the right key continues after resume', async () => {
    rig = await startRig({ timeScale: 10 });
    const wrong = await rig.startWorker([], { KIE_API_KEY: 'sk-wrong-key' });
    await enqueue(rig.rt, topazImages(rig, 5, 'auth'), { batchId: 'auth' });
    await waitFor(async () => await rig!.rt.queues.submit.isPaused(), { what: 'submit lane paused' });
    expect(await getPauseReason(rig.rt.redis, rig.rt.store.keys, 'submit')).toMatchObject({ code: '401' });
    expect(wrong.stderr()).not.toContain('sk-wrong-key');
    expect((await wrong.stop()).code).toBe(0);
    await rig.startWorker();
    expect((await runUpscale(['resume'], rig.env)).code).toBe(0);
    const summary = await waitForBatch(rig.rt, 'auth');
    expect(summary.counts.succeeded).toBe(5);
  });
});
