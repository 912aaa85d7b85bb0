import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendSpacingMs } from '../../src/queue/limits.js';
import { takeSendSlot, waitForSendSlot } from '../../src/worker/create-gate.js';
import { startLocalRig, type LocalRig } from './preflight-fixtures.js';

let rig: LocalRig;
beforeAll(async () => {
  rig = await startLocalRig({ env: { OUTPUT_DIR: '', KIE_CREATE_LIMIT: '20/1s' } });
});
afterAll(() => rig.stop());

describe('createTask send gate', () => {
  it('hands out send slots exactly one limiter spacing apart, whoever asks at once', async () => {
    const spacing = sendSpacingMs(rig.rt.config.createLimit);
    const slots = (await Promise.all(Array.from({ length: 8 }, () => takeSendSlot(rig.rt)))).map((s) => s.slotAt).sort((a, b) => a - b);
    // Lua keeps 14 significant digits: slots of a fractional spacing may be off by a tenth of a millisecond.
    for (let i = 1; i < slots.length; i++) expect(slots[i]! - slots[i - 1]!).toBeCloseTo(spacing, 0);
    // The next caller waits for the slot after the last one handed out.
    const started = Date.now();
    const waited = await waitForSendSlot(rig.rt);
    expect(waited).toBeGreaterThan(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(waited - 1);
  });
});
