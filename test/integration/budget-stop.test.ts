import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorkers } from '../../src/worker/index.js';
import { getBatchBudget, reserveCredits, setBatchBudget } from '../../src/worker/budget.js';
import { enqueueDirect, startLocalRig, waitForRecords, type LocalRig } from './preflight-fixtures.js';

let rig: LocalRig;
beforeAll(async () => {
  rig = await startLocalRig({ env: { OUTPUT_DIR: '' } });
});
afterAll(() => rig.stop());

describe('credit budget', () => {
  it('reserves atomically: concurrent reservations never pass the budget, and each image reserves once', async () => {
    await setBatchBudget(rig.rt, 'bud-atomic', 95);
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => reserveCredits(rig.rt, 'bud-atomic', `job${i % 20}`, 10)),
    );
    const reserved = new Set(results.flatMap((r, i) => (r.ok ? [`job${i % 20}`] : [])));
    expect(reserved.size).toBe(9);
    const state = await getBatchBudget(rig.rt, 'bud-atomic');
    expect(state).toEqual({ maxCredits: 95, reserved: 90 });
    expect(await reserveCredits(rig.rt, 'no-budget', 'x', 1e9)).toEqual({ ok: true, budgeted: false });
  });

  it('stops submitting at --max-credits: the rest is cancelled with the reason, credits never above the budget', async () => {
    const batch = 'bud-stop';
    await setBatchBudget(rig.rt, batch, 45);
    // Two sets of workers, as two processes would run them, share the reservations.
    await rig.start({ concurrency: 4 });
    const second = await startWorkers(rig.rt, { concurrency: 4, lanes: ['submit'] });
    try {
      const items = Array.from({ length: 7 }, (_, i) => ({ input: rig.image(`b${i}`, 64, 48, 'png') }));
      await enqueueDirect(rig.rt, batch, items);
      const records = await waitForRecords(rig.rt, batch);
      const ok = records.filter((r) => r.state === 'succeeded');
      const cancelled = records.filter((r) => r.state === 'cancelled');
      expect(ok).toHaveLength(4); // 10 credits each (output 128 px: topaz 2K)
      expect(cancelled).toHaveLength(3);
      for (const r of cancelled) {
        expect(r).toMatchObject({ failCode: 'budget', submitAttempts: 0, taskId: null });
        expect(r.failMsg).toMatch(/credit budget of 45 reached: 40 reserved or consumed, this image needs about 10/);
      }
      const summary = await rig.rt.store.getSummary(batch);
      expect(summary?.creditsConsumed).toBe(40);
      expect(rig.sim.stats().createAccepted).toBe(4);
    } finally {
      await second.close(3000);
    }
  });
});
