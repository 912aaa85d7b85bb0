import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderSampleImage } from '../../src/sim/images.js';
import { createPrepareInput } from '../../src/worker/prepare-input.js';
import { waitFor } from '../helpers/redis.js';
import { enqueueDirect, startLocalRig, waitForRecords, type LocalRig } from './preflight-fixtures.js';

let rig: LocalRig;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'upload-'));
  rig = await startLocalRig({ env: { RETRY_BACKOFF: '300ms', OUTPUT_DIR: '' } });
});
afterAll(async () => {
  await rig.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('local files', () => {
  it('are uploaded just before submission, once, even when createTask is retried', async () => {
    const a = join(dir, 'cat photo.png');
    const b = join(dir, 'dog.jpg');
    const gone = join(dir, 'gone.png');
    await writeFile(a, await renderSampleImage('cat', 80, 60, 'png'));
    await writeFile(b, await renderSampleImage('dog', 60, 80, 'jpg'));
    await writeFile(gone, await renderSampleImage('gone', 8, 8, 'png'));
    const batch = 'up-local';
    rig.sim.setFaults({ generationErrorRate: 1 });
    await enqueueDirect(rig.rt, batch, [{ input: a }, { input: pathToFileURL(b).href, model: 'recraft/crisp-upscale' }, { input: gone }]);
    await rm(gone); // vanished between enqueue and submission
    await rig.start();
    await waitFor(() => rig.sim.stats().errors501 >= 2, { what: 'both createTask calls to fail once' });
    rig.sim.setFaults({ generationErrorRate: 0 });
    const records = await waitForRecords(rig.rt, batch);
    const ok = records.filter((r) => r.state === 'succeeded');
    expect(ok).toHaveLength(2);
    for (const r of ok) expect(r.submitAttempts).toBeGreaterThanOrEqual(2);
    expect(records.find((r) => r.input === gone)).toMatchObject({ state: 'failed', failCode: 'input', failMsg: expect.stringMatching(/no longer exists/) as unknown });
    const stats = rig.sim.stats();
    expect(stats.uploads).toBe(2);
    const tasks = rig.sim.tasks();
    expect(tasks).toHaveLength(2);
    for (const t of tasks) expect(t.input).toMatch(new RegExp(`^${rig.sim.url}/files/`));
    expect(tasks.map((t) => t.input).some((u) => u.endsWith('cat%20photo.png') || u.endsWith('cat photo.png'))).toBe(true);
  });

  it('reuses an upload younger than UPLOAD_LIFETIME and uploads an older one again', async () => {
    const path = join(dir, 'lifetime.webp');
    await writeFile(path, await renderSampleImage('life', 32, 32, 'webp'));
    const t0 = Date.now();
    const prepare = createPrepareInput(rig.rt, { now: () => t0 });
    const data = { jobId: 'f'.repeat(24), batchId: 'up-life', input: path, model: 'topaz/image-upscale' as const, factor: '2' as const, generation: 0 };
    const before = rig.sim.stats().uploads;
    const young = await prepare({ ...data, uploadedUrl: 'http://kept.example/x.webp', uploadedAt: t0 - 3600_000 });
    expect(young).toEqual({ ok: true, url: 'http://kept.example/x.webp' });
    expect(rig.sim.stats().uploads).toBe(before);
    const old = await prepare({ ...data, uploadedUrl: 'http://kept.example/x.webp', uploadedAt: t0 - 21 * 3600_000 });
    expect(old).toMatchObject({ ok: true, url: expect.stringMatching(/\/files\//) as unknown, update: { uploadedAt: t0 } });
    expect(rig.sim.stats().uploads).toBe(before + 1);
  });
});
