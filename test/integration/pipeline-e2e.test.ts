import { afterEach, describe, expect, it } from 'vitest';
import { enqueue } from '../../src/producer/index.js';
import { batchRecords, startRig, TOPAZ, waitForBatch, type Rig } from '../helpers/pipeline.js';

const RECRAFT = 'recraft/crisp-upscale';

describe('pipeline end to end (two worker processes, simulator at ×10)', () => {
  let rig: Rig | undefined;
  afterEach(async () => {
    await rig?.stop();
    rig = undefined;
  });

  it('takes 200 images to the state the simulator decided, one createTask each, within the limits', async () => {
    rig = await startRig({
      timeScale: 10,
      sim: { failRate: 0.1, failCodes: { '422': 1, '500': 1 } },
      env: { RESUBMIT_FAILED: '0' },
    });
    await Promise.all([rig.startWorker(), rig.startWorker()]);
    const items = Array.from({ length: 200 }, (_, i) => ({
      input: rig!.image(`e2e${i}`, 40 + (i % 7), 30 + (i % 5), (['png', 'jpg', 'webp'] as const)[i % 3]),
      model: i % 4 === 0 ? RECRAFT : TOPAZ,
      ...(i % 4 === 0 ? {} : { factor: ['1', '2', '4', '8'][i % 4] }),
    }));
    const result = await enqueue(rig.rt, items, { batchId: 'e2e-200' });
    expect(result).toMatchObject({ enqueued: 200, duplicates: 0, rejected: [] });

    const summary = await waitForBatch(rig.rt, 'e2e-200', 120_000);
    const stats = rig.sim.stats();
    const tasks = new Map(rig.sim.tasks().map((t) => [t.taskId, t]));
    const records = await batchRecords(rig, 'e2e-200');
    expect(records).toHaveLength(200);
    for (const r of records) {
      const task = tasks.get(r.taskId ?? '');
      expect(task, `task of ${r.input}`).toBeDefined();
      expect(r.state).toBe(task!.state === 'success' ? 'succeeded' : 'failed');
      if (r.state === 'succeeded') expect(r.resultUrls).toEqual(task!.resultUrls);
      else expect(r.failCode).toBe(task!.failCode);
      const why = { record: r, create429: stats.createRejected429, duplicated: stats.duplicatedInputs, perInput: stats.perInput[r.input] };
      expect(r.submitAttempts, JSON.stringify(why)).toBe(1);
    }
    expect(summary.counts.succeeded + summary.counts.failed).toBe(200);
    expect(summary.counts.failed).toBeGreaterThan(0);
    // nothing paid twice, no limit broken
    expect(stats.duplicatedInputs).toEqual([]);
    expect(stats.createAccepted).toBe(200);
    expect(Object.values(stats.perInput).every((n) => n === 1)).toBe(true);
    expect(stats.createRejected429).toBe(0);
    expect(stats.peakCreateInWindow).toBeLessThanOrEqual(20);
    // Polling spends its share of the query budget (POLL_BUDGET_SHARE 0.8 of 10 per second), never more.
    expect(stats.peakQueriesInWindow).toBeLessThanOrEqual(8);
    expect(stats.queries429).toBe(0);
  });
});
