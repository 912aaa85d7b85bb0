/**
 * Verified outputs on real parts: the simulator serves results truncated over HTTP/1.0 without Content-Length, or
 * gzip-encoded though nobody asked. A truncated result is retried, then recorded with `outputProblem`; its temp
 * file is removed and nothing lands in OUTPUT_DIR. A gzip-encoded result is decoded and saved as the image.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { enqueueDirect, startLocalRig, waitForRecords, type LocalRig } from './preflight-fixtures.js';

let rig: LocalRig | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
});

describe('verified downloads', () => {
  it('a result cut halfway over HTTP/1.0 (no Content-Length) is retried, then outputProblem; nothing in OUTPUT_DIR', async () => {
    rig = await startLocalRig({ env: { DOWNLOAD_RETRIES: '2' }, sim: { faults: { truncatedResultRate: 1 } } });
    await rig.start();
    const [id] = await enqueueDirect(rig.rt, 'dl-cut', [{ input: rig.image('half', 64, 48, 'jpg') }]);
    const [r] = await waitForRecords(rig.rt, 'dl-cut', { downloads: true });
    expect(r).toMatchObject({ jobId: id, state: 'succeeded', outputPath: null, sha256: null });
    expect(r!.outputProblem).toMatch(/^the output is incomplete: the JPEG file is truncated: it ends after \d+ bytes, before its end marker \(EOI\)$/);
    expect(r!.failMsg).toMatch(/download failed after 2 tries/);
    // No output, no leftover .part file; the batch finalizer may already have written its results.jsonl and summary.json.
    const files = (await readdir(join(rig.outputDir, 'dl-cut')).catch(() => [] as string[])).filter((f) => f !== 'results.jsonl' && f !== 'summary.json');
    expect(files).toEqual([]);
  });

  it('a gzip-encoded result is decoded: the file is the image, verified, its sha256 over the decoded bytes', async () => {
    rig = await startLocalRig({ sim: { faults: { gzipResultRate: 1 } } });
    await rig.start();
    await enqueueDirect(rig.rt, 'dl-gzip', [
      { input: rig.image('zipped', 50, 40, 'png'), factor: '4' },
      { input: rig.image('crisp', 30, 20, 'webp'), model: 'recraft/crisp-upscale', factor: null },
    ]);
    const records = await waitForRecords(rig.rt, 'dl-gzip', { downloads: true });
    const sizes = [];
    for (const r of records) {
      expect(r).toMatchObject({ state: 'succeeded', outputProblem: null, orientationMismatch: false });
      const data = await readFile(r.outputPath!);
      expect(r.sha256).toBe(createHash('sha256').update(data).digest('hex'));
      const meta = await sharp(data).metadata();
      sizes.push(`${meta.format} ${meta.width}x${meta.height}`);
    }
    expect(sizes.sort()).toEqual(['png 200x160', 'webp 60x40']);
  });
});
