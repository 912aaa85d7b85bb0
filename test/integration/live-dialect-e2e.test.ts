/**
 * The pipeline against the simulator speaking kie.ai's live dialect (issue 11's "Done when"): a daily key cap pauses
 * submission and the probe resumes it after the reset, odd state words never fail a running image, durations come
 * out in milliseconds, Retry-After is waited out (an invalid one falls back), and the circuit breaker sends a run of
 * identical refusals back to waiting. Real worker processes, compressed time scales.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { enqueue } from '../../src/producer/index.js';
import { getPauseReason } from '../../src/queue/pause-reason.js';
import type { ResultRecord } from '../../src/results/record.js';
import { startRig, waitForBatch, type Rig } from '../helpers/pipeline.js';
import { waitFor } from '../helpers/redis.js';

const TOPAZ = 'topaz/image-upscale';

async function records(rig: Rig, batchId: string): Promise<ResultRecord[]> {
  const out: ResultRecord[] = [];
  for await (const r of rig.rt.store.records(batchId)) out.push(r);
  return out;
}

function images(rig: Rig, n: number, tag: string) {
  return Array.from({ length: n }, (_, i) => ({ input: rig.image(`${tag}${i}`, 32 + (i % 5), 24), model: TOPAZ, factor: '2' }));
}

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
    await enqueue(rig.rt, images(rig, 30, 'cap'), { batchId: 'cap' });
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
    await enqueue(rig.rt, images(rig, 30, 'odd'), { batchId: 'odd' });
    await waitForBatch(rig.rt, 'odd', 90_000);
    const tasks = new Map(rig.sim.tasks().map((t) => [t.taskId, t]));
    const recs = await records(rig, 'odd');
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
    await enqueue(rig.rt, images(rig, 4, 'ra'), { batchId: 'ra' });
    await waitForBatch(rig.rt, 'ra', 60_000);
    expect(rig.sim.stats().createRejected429).toBeGreaterThan(0);
    for (const gap of createGaps(rig)) expect(gap).toBeGreaterThanOrEqual(2900);
  });

  it('an invalid Retry-After falls back to the escalating slow-down', async () => {
    rig = await startRig({ timeScale: 40, sim: { retryAfter: 'soon', createLimit: { max: 1, durationMs: 10_000 } } });
    await rig.startWorker();
    await enqueue(rig.rt, images(rig, 4, 'rb'), { batchId: 'rb' });
    await waitForBatch(rig.rt, 'rb', 60_000);
    expect(rig.sim.stats().createRejected429).toBeGreaterThan(0);
    expect(Math.max(...createGaps(rig))).toBeLessThan(2500);
  });

  it('the circuit breaker: 5 images in a row refused alike pause submission, none failed; the probe resumes after the cool-down', async () => {
    rig = await startRig({ timeScale: 20, sim: { faults: { generationErrorRate: 1 } }, env: { SUBMIT_BREAKER: '5', PROBE_COOLDOWN: '3s' } });
    await rig.startWorker();
    await enqueue(rig.rt, images(rig, 8, 'brk'), { batchId: 'brk' });
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
});
