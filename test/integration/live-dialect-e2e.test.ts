/**
 * The pipeline against the simulator speaking kie.ai's live dialect (issue 11's "Done when"): a daily key cap pauses
 * submission and the probe resumes it after the reset, odd state words never fail a running image, durations come
 * out in milliseconds, Retry-After is waited out (an invalid one falls back), and the circuit breaker sends a run of
 * identical refusals back to waiting; a key revoked mid-batch, met while polling, pauses submission too, the key probe
 * asks the free credit endpoint (never a createTask), and the batch ends with nothing lost or paid twice. Real worker
 * processes, compressed time scales.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { enqueue } from '../../src/producer/index.js';
import { getPauseReason } from '../../src/queue/pause-reason.js';
import { batchRecords, expectNoDoublePayment, holdSendPlace, startRig, TOPAZ, topazImages, waitForBatch, type Rig } from '../helpers/pipeline.js';
import { runUpscale } from '../helpers/processes.js';
import { waitFor } from '../helpers/redis.js';

const CREATE = '/api/v1/jobs/createTask';
const CREDIT = '/api/v1/chat/credit';

/** API calls the simulator received on `path` so far (refused ones included). */
function calls(rig: Rig, path: string): number {
  return rig.sim.stats().callsByPath[path] ?? 0;
}

/** The value of one counter of the shared counters hash (0 when never counted). */
async function counter(rig: Rig, name: string, labels: Record<string, string>): Promise<number> {
  const all = await rig.rt.redis.hgetall(rig.rt.store.keys.counters);
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let n = 0;
  for (const [k, v] of Object.entries(all)) if (k.startsWith(name) && want.every((w) => k.includes(w))) n += Number(v);
  return n;
}

/**
 * The key-revoked-while-polling scene shared by the two 401 tests: 6 images, the worker sending at most 3 createTask
 * per 6 s, tasks lasting 4–6 s. One place of the send window is held for 10 s by a call of "another process" whose
 * answer is slow, so 2 images are sent at once and a third waits at the send gate, its job running, until the first
 * two calls' places free 6 s later. Once the first two tasks exist the key is revoked at kie.ai: the first refusal
 * any lane meets is a recordInfo 401 (the next send is seconds away, their polls a few hundred ms), and the third
 * image is still waiting to send when the lane pauses.
 * Resolves when both lanes are paused for it.
 */
async function revokeWhilePolling(rig: Rig, batchId: string) {
  await rig.startWorker();
  await holdSendPlace(rig, 10_000);
  await enqueue(rig.rt, topazImages(rig, 6, batchId), { batchId });
  await waitFor(() => rig.sim.stats().createAccepted >= 2, { timeoutMs: 20_000, what: 'the first 2 tasks created' });
  rig.sim.setApiKeys(['sk-the-new-key-nobody-has']);
  const createsAtRevoke = calls(rig, CREATE);
  const firstCreateAt = Math.min(...rig.sim.tasks().map((t) => t.createdAt));
  // Submission pauses first, then polling (the key is refused for both).
  const reason = await waitFor(async () => {
    const r = await getPauseReason(rig.rt.redis, rig.rt.store.keys, 'submit');
    const p = await getPauseReason(rig.rt.redis, rig.rt.store.keys, 'poll');
    return r?.code === '401' && p?.code === '401' ? r : null;
  }, { timeoutMs: 10_000, what: 'submission and polling paused by the 401 met while polling' });
  // The third image's job is running, held at the send gate by the other process's call.
  expect((await rig.rt.queues.submit.getJobCounts('active')).active).toBe(1);
  return { reason, createsAtRevoke, firstCreateAt };
}

/** The worker's environment for the scene (real ms; the rig's ×10 scaling does the rest). */
const SLOW_SENDS = { KIE_CREATE_LIMIT: '3/6000ms', CREDITS_CHECK_INTERVAL: '1h' };
const LONG_TASKS = { latency: { 'topaz/image-upscale': { medianMs: 40_000, p95Ms: 60_000 } } };

/** `HH:MM:SS` of a Unix-ms time, in UTC. */
function utcTimeOfDay(ms: number): string {
  return new Date(ms).toISOString().slice(11, 19);
}

describe('live dialect end to end', () => {
  let rig: Rig | undefined;
  afterEach(async () => {
    await rig?.stop();
    rig = undefined;
  });

  it('a daily limit of 10 pauses submission with the reason (20 stay waiting, none failed); the probe resumes it after the reset', async () => {
    const resetAt = Date.now() + 30_000 - (Date.now() % 1000) + 1000;
    rig = await startRig({ timeScale: 20, sim: { dailyLimit: 10 }, env: { KIE_DAILY_RESET: utcTimeOfDay(resetAt) } });
    await rig.startWorker();
    await enqueue(rig.rt, topazImages(rig, 30, 'cap'), { batchId: 'cap' });
    const paused = await waitFor(
      async () => {
        const s = await rig!.rt.store.getSummary('cap');
        const reason = await getPauseReason(rig!.rt.redis, rig!.rt.store.keys, 'submit');
        return s && s.counts.succeeded === 10 && s.counts.waiting === 20 && reason?.code === '433' ? { s, reason } : null;
      },
      { timeoutMs: 25_000, what: '10 succeeded, 20 waiting, submission paused by 433' },
    );
    expect(Date.now()).toBeLessThan(resetAt);
    expect(paused.s.counts.failed).toBe(0);
    expect(await rig.rt.queues.submit.isPaused()).toBe(true);
    expect(paused.reason.message).toMatch(/daily limit/);
    expect(paused.reason.probe).toMatchObject({ kind: 'image', at: resetAt, running: false });
    expect(rig.sim.stats().createAccepted).toBe(10);
    // The cap is lifted (a new day at kie.ai); the probe at the reset time finds out on its own.
    rig.sim.setDailyLimit(null);
    const summary = await waitForBatch(rig.rt, 'cap', 90_000);
    expect(summary.counts.succeeded).toBe(30);
    expect(summary.counts.failed).toBe(0);
    expect(await getPauseReason(rig.rt.redis, rig.rt.store.keys, 'submit')).toBeNull();
    expect(await rig.rt.queues.submit.isPaused()).toBe(false);
    expect(rig.sim.stats().createAccepted).toBe(30);
  });

  it('odd state words never fail a running image; every image ends as the simulator decided, costTimeMs within 5 %', async () => {
    rig = await startRig({ timeScale: 20, sim: { oddStates: 0.5, failRate: 0.2, failCodes: { '422': 1 } } });
    await rig.startWorker();
    await enqueue(rig.rt, topazImages(rig, 30, 'odd'), { batchId: 'odd' });
    await waitForBatch(rig.rt, 'odd', 90_000);
    const tasks = new Map(rig.sim.tasks().map((t) => [t.taskId, t]));
    const recs = await batchRecords(rig, 'odd');
    expect(recs).toHaveLength(30);
    let odd = 0;
    for (const r of recs) {
      const t = tasks.get(r.taskId ?? '');
      expect(t, r.input).toBeDefined();
      if (!t) continue;
      expect(r.state).toBe(t.state === 'success' ? 'succeeded' : 'failed');
      if (t.state === 'fail') expect(r).toMatchObject({ failCode: '422', failMsg: t.failMsg });
      const trueMs = (t.completedAt as number) - t.createdAt;
      expect(Math.abs((r.costTimeMs as number) - trueMs)).toBeLessThanOrEqual(trueMs * 0.05);
      expect(r.kieCostTime).toBe(Math.floor(trueMs / 1000));
      if (r.kieState === 'SUCCEEDED' || r.kieState === 'FAILED') odd++;
    }
    expect(odd).toBeGreaterThan(0);
    // The adaptive poll schedule learns from the same figure: its samples are the succeeded records' costTimeMs
    // (written within a second of each other: the worker sends a second's samples in one write).
    const succeededMs = recs.filter((r) => r.state === 'succeeded').map((r) => r.costTimeMs as number).sort((a, b) => a - b);
    const { rt } = rig;
    const readSamples = async () => (await rt.redis.lrange(rt.store.keys.durations(TOPAZ), 0, -1)).map(Number).sort((a, b) => a - b);
    await waitFor(async () => (await readSamples()).length >= succeededMs.length, { timeoutMs: 10_000, what: 'the duration samples to be written' });
    expect(await readSamples()).toEqual(succeededMs);
  });

  /** Gaps (ms) between consecutive accepted createTask calls. */
  function createGaps(r: Rig): number[] {
    const times = r.sim.tasks().map((t) => t.createdAt).sort((a, b) => a - b);
    return times.slice(1).map((t, i) => t - (times[i] as number));
  }

  it('a 429 with Retry-After: 120 (3 s at ×40) is waited out by every worker', async () => {
    // The simulator lets 1 create through per 10 s (250 ms at ×40); the workers think 20 are allowed: every second send is a 429.
    rig = await startRig({ timeScale: 40, sim: { retryAfter: 120, createLimit: { max: 1, durationMs: 10_000 } } });
    await rig.startWorker();
    await enqueue(rig.rt, topazImages(rig, 4, 'ra'), { batchId: 'ra' });
    await waitForBatch(rig.rt, 'ra', 60_000);
    expect(rig.sim.stats().createRejected429).toBeGreaterThan(0);
    for (const gap of createGaps(rig)) expect(gap).toBeGreaterThanOrEqual(2900);
    // The slow-down is logged with the wait as parsed from the header.
    expect(rig.workers[0]!.stderr()).toMatch(/"retryAfterMs":3000,"retryAfter":"3\.0s".*kie\.ai asked to slow down with Retry-After 3\.0s; every submit worker waits 3\.0s/);
  });

  it('an invalid Retry-After falls back to the escalating slow-down', async () => {
    rig = await startRig({ timeScale: 40, sim: { retryAfter: 'soon', createLimit: { max: 1, durationMs: 10_000 } } });
    await rig.startWorker();
    await enqueue(rig.rt, topazImages(rig, 4, 'rb'), { batchId: 'rb' });
    await waitForBatch(rig.rt, 'rb', 60_000);
    expect(rig.sim.stats().createRejected429).toBeGreaterThan(0);
    expect(Math.max(...createGaps(rig))).toBeLessThan(2500);
  });

  it('the circuit breaker: 5 images in a row refused alike pause submission, none failed; the probe resumes after the cool-down', async () => {
    rig = await startRig({ timeScale: 20, sim: { faults: { generationErrorRate: 1 } }, env: { SUBMIT_BREAKER: '5', PROBE_COOLDOWN: '3s' } });
    await rig.startWorker();
    await enqueue(rig.rt, topazImages(rig, 8, 'brk'), { batchId: 'brk' });
    const reason = await waitFor(async () => {
      const r = await getPauseReason(rig!.rt.redis, rig!.rt.store.keys, 'submit');
      return r?.code === 'breaker' ? r : null;
    }, { timeoutMs: 20_000, what: 'the breaker to pause submission' });
    expect(reason.message).toMatch(/^5 images in a row failed with 501 /);
    await waitFor(async () => {
      const s = await rig!.rt.store.getSummary('brk');
      return s && s.counts.waiting === 8 ? s : null;
    }, { timeoutMs: 10_000, what: 'all 8 images back to waiting' });
    rig.sim.setFaults({ generationErrorRate: 0 });
    const summary = await waitForBatch(rig.rt, 'brk', 60_000);
    expect(summary.counts.succeeded).toBe(8);
    expect(summary.counts.failed).toBe(0);
    expect(await getPauseReason(rig.rt.redis, rig.rt.store.keys, 'submit')).toBeNull();
  });

  it('a 401 met while polling (key revoked mid-batch) pauses submission with the reason; nothing is sent while paused, `upscale resume` finishes every image, nothing paid twice', async () => {
    // The key probe waits 10 min: only `upscale resume` lifts this pause.
    rig = await startRig({ timeScale: 10, sim: LONG_TASKS, env: { ...SLOW_SENDS, PROBE_COOLDOWN: '10m' } });
    const { reason, createsAtRevoke, firstCreateAt } = await revokeWhilePolling(rig, 'rvk');
    expect(createsAtRevoke).toBe(2);
    expect(reason).toMatchObject({ code: '401', source: 'poll', probe: { kind: 'key' } });
    expect(reason.message).toMatch(/rejected the API key \(401: .*Fix KIE_API_KEY/);
    expect(await rig.rt.queues.submit.isPaused()).toBe(true);
    expect(await getPauseReason(rig.rt.redis, rig.rt.store.keys, 'poll')).toMatchObject({ code: '401', source: 'poll' });
    const taskIds = new Map(rig.sim.tasks().map((t) => [t.input, t.taskId]));
    // Past the moment the held third image passes the send gate, and the next window of the create budget: still
    // nothing sent (the third image went back to waiting instead of sending).
    await sleep(Math.max(0, firstCreateAt + 8000 - Date.now()));
    expect(calls(rig, CREATE)).toBe(createsAtRevoke);
    expect((await rig.rt.queues.submit.getJobCounts('active')).active).toBe(0);
    const during = await rig.rt.store.getSummary('rvk');
    expect(during!.counts).toMatchObject({ polling: 2, waiting: 4, failed: 0, submitting: 0 });
    const status = await runUpscale(['status', '--json'], rig.env);
    expect(status.stdout).toMatch(/"code":"401"/);
    expect(await getPauseReason(rig.rt.redis, rig.rt.store.keys, 'submit')).toMatchObject({ code: '401' });

    rig.sim.setApiKeys([rig.apiKey]);
    expect((await runUpscale(['resume'], rig.env)).code).toBe(0);
    const summary = await waitForBatch(rig.rt, 'rvk', 60_000);
    expect(summary.counts.succeeded).toBe(6);
    expect(summary.counts.failed).toBe(0);
    const stats = rig.sim.stats();
    expect(stats.createAccepted).toBe(6);
    expect(stats.duplicatedInputs).toEqual([]);
    const recs = await batchRecords(rig, 'rvk');
    expectNoDoublePayment(rig, recs);
    // The two tasks in flight when the key was revoked were followed to their end, not sent again.
    for (const r of recs) {
      expect(r.submitAttempts, r.input).toBe(1);
      const before = taskIds.get(r.input);
      if (before) expect(r.taskId).toBe(before);
    }
    expect(await getPauseReason(rig.rt.redis, rig.rt.store.keys, 'submit')).toBeNull();
    expect(await getPauseReason(rig.rt.redis, rig.rt.store.keys, 'poll')).toBeNull();
  });

  it('while paused for a 401, the key is probed through the credit endpoint (never a createTask); refused it stays paused, valid again both lanes resume on their own', async () => {
    rig = await startRig({ timeScale: 10, sim: LONG_TASKS, env: { ...SLOW_SENDS, PROBE_COOLDOWN: '1500ms' } });
    const { reason, createsAtRevoke } = await revokeWhilePolling(rig, 'kp');
    expect(reason).toMatchObject({ code: '401', source: 'poll', probe: { kind: 'key' } });
    const creditsAtPause = calls(rig, CREDIT);
    const answeredAtPause = rig.sim.stats().creditChecks;
    // Two refused probes of each lane: the lanes stay paused with the reason, and say what the probe met.
    const refused = await waitFor(async () => {
      const s = await getPauseReason(rig!.rt.redis, rig!.rt.store.keys, 'submit');
      const p = await getPauseReason(rig!.rt.redis, rig!.rt.store.keys, 'poll');
      return (s?.probe?.tries ?? 0) >= 2 && (p?.probe?.tries ?? 0) >= 2 ? { s: s!, p: p! } : null;
    }, { timeoutMs: 20_000, what: 'two refused key probes of each lane' });
    for (const r of [refused.s, refused.p]) {
      expect(r).toMatchObject({ code: '401', message: reason.message, probe: { kind: 'key', running: false } });
      expect(r.probe?.last).toMatch(/^401 /);
    }
    expect(await rig.rt.queues.submit.isPaused()).toBe(true);
    expect(await rig.rt.queues.poll.isPaused()).toBe(true);
    expect(calls(rig, CREDIT) - creditsAtPause).toBeGreaterThanOrEqual(4);
    expect(rig.sim.stats().creditChecks).toBe(answeredAtPause); // each was refused (401) before the balance
    expect(calls(rig, CREATE)).toBe(createsAtRevoke);
    await waitFor(async () => (await counter(rig!, 'upscale_lane_probes_total', { result: 'refused' })) >= 4, { what: '4 refused probes counted' });
    const summary = await rig.rt.store.getSummary('kp');
    expect(summary!.counts).toMatchObject({ polling: 2, waiting: 4, failed: 0 });

    // The key works again: the next credit call answers, and each lane lifts its own pause, no `upscale resume`.
    const creditsBefore = rig.sim.stats().creditChecks;
    rig.sim.setApiKeys([rig.apiKey]);
    await waitFor(async () => {
      const [s, p] = await Promise.all([
        getPauseReason(rig!.rt.redis, rig!.rt.store.keys, 'submit'),
        getPauseReason(rig!.rt.redis, rig!.rt.store.keys, 'poll'),
      ]);
      return s === null && p === null && !(await rig!.rt.queues.submit.isPaused()) && !(await rig!.rt.queues.poll.isPaused());
    }, { timeoutMs: 15_000, what: 'both lanes resumed by the key probe' });
    expect(rig.sim.stats().creditChecks).toBeGreaterThan(creditsBefore);
    await waitFor(async () => (await counter(rig!, 'upscale_lane_probes_total', { result: 'resumed' })) >= 2, { what: '2 lanes resumed by probes counted' });
    const done = await waitForBatch(rig.rt, 'kp', 60_000);
    expect(done.counts.succeeded).toBe(6);
    expect(done.counts.failed).toBe(0);
    expect(rig.sim.stats().createAccepted).toBe(6);
    expect(rig.sim.stats().duplicatedInputs).toEqual([]);
  });
});
