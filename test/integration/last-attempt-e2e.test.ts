/**
 * An image whose task failed at kie.ai (failCode 500) keeps that task visible after it goes back for a new one
 * (lastTaskId, lastFailCode, lastFailMsg), with a real worker against the simulator.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { enqueue } from '../../src/producer/index.js';
import { startRig, waitForBatch, type Rig } from '../helpers/pipeline.js';

describe('the previous attempt of a resubmitted image', () => {
  let rig: Rig | undefined;
  afterEach(async () => {
    await rig?.stop();
    rig = undefined;
  });

  it('a 500 resubmitted automatically keeps the failed task as lastTaskId/lastFailCode, generation 1, submitAttempts 2', async () => {
    rig = await startRig({ timeScale: 10, sim: { failRate: 1, failCodes: { '500': 1 } }, env: { RESUBMIT_FAILED: '1' } });
    await rig.startWorker();
    const input = rig.image('last-attempt', 40, 30, 'png');
    await enqueue(rig.rt, [{ input, model: 'topaz/image-upscale', factor: '2' }], { batchId: 'last-attempt' });
    await waitForBatch(rig.rt, 'last-attempt', 60_000);
    const records = [];
    for await (const r of rig.rt.store.records('last-attempt')) records.push(r);
    const [r] = records;
    const tasks = rig.sim.tasks(); // one image: its two tasks
    expect(tasks).toHaveLength(2);
    const first = tasks.find((t) => t.taskId !== r!.taskId)!;
    expect(r).toMatchObject({ state: 'failed', failCode: '500', generation: 1, submitAttempts: 2, lastTaskId: first.taskId, lastFailCode: '500' });
    expect(r!.lastFailMsg).toBe(first.failMsg);
  });
});
