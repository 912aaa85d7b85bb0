import { createHash } from 'node:crypto';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import sharp from 'sharp';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { enqueueDirect, startLocalRig, waitForRecords, type LocalRig } from './preflight-fixtures.js';

let rig: LocalRig | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
});

describe('download lane', () => {
  it('writes every result under OUTPUT_DIR/<batch>/, checked, with outputPath and sha256 recorded', async () => {
    rig = await startLocalRig({ env: { DOWNLOAD_CONCURRENCY: '2' } });
    const batch = 'dl-ok';
    const inputs = [
      { input: rig.image('sunset', 64, 48, 'png'), factor: '2' as const, size: [128, 96] },
      { input: rig.image('beach', 50, 40, 'jpg'), factor: '4' as const, size: [200, 160] },
      { input: rig.image('forest', 40, 30, 'webp'), model: 'recraft/crisp-upscale' as const, factor: null, size: [80, 60] },
    ];
    await rig.start();
    const ids = await enqueueDirect(rig.rt, batch, inputs);
    const records = await waitForRecords(rig.rt, batch, { downloads: true });
    const files = await readdir(join(rig.outputDir, batch));
    expect(files.filter((f) => f.endsWith('.part'))).toEqual([]);
    // Beside the outputs: the thumbnails' folder and the finalizer's results.jsonl / summary.json.
    expect(files.filter((f) => !['.thumbs', 'results.jsonl', 'summary.json'].includes(f))).toHaveLength(3);
    // Thumbnails: input and output in the same frame, small and preview, WebP, made once beside the outputs.
    for (const id of ids) {
      const size = async (f: string) => {
        const m = await sharp(await readFile(join(rig!.outputDir, batch, '.thumbs', `${id}-${f}`))).metadata();
        expect(m.format).toBe('webp');
        return [m.width, m.height];
      };
      const [inPreview, outPreview, inSmall, outSmall] = await Promise.all(['in.webp', 'out.webp', 'in-small.webp', 'out-small.webp'].map(size));
      expect(inPreview).toEqual(outPreview);
      expect(inSmall).toEqual(outSmall);
      expect(Math.max(...inPreview!)).toBe(640);
      expect(Math.max(...inSmall!)).toBe(96);
    }
    for (const [i, item] of inputs.entries()) {
      const r = records.find((x) => x.jobId === ids[i])!;
      expect(r.state).toBe('succeeded');
      expect(r.failMsg).toBeNull();
      expect(dirname(r.outputPath!)).toBe(join(rig.outputDir, batch));
      const name = basename(new URL(item.input).pathname).replace(/\.\w+$/, '');
      expect(basename(r.outputPath!)).toBe(`${r.jobId}-${name}.${item.input.split('.').pop()}`);
      const data = await readFile(r.outputPath!);
      expect(r.sha256).toBe(createHash('sha256').update(data).digest('hex'));
      const meta = await sharp(data).metadata();
      expect([meta.width, meta.height]).toEqual(item.size);
    }
  });

  it('gives up after DOWNLOAD_RETRIES: the record stays succeeded, outputPath null, failMsg says why', async () => {
    // OUTPUT_DIR names a file: every try fails (ENOTDIR), like a full or read-only disk would.
    const blocked = join(tmpdir(), `not-a-folder-${process.pid}-${Date.now()}`);
    await writeFile(blocked, 'x');
    onTestFinished(() => rm(blocked, { force: true }));
    rig = await startLocalRig({ env: { DOWNLOAD_RETRIES: '2', OUTPUT_DIR: blocked } });
    await rig.start();
    const [id] = await enqueueDirect(rig.rt, 'dl-fail', [{ input: rig.image('x', 16, 16, 'png') }]);
    const [r] = await waitForRecords(rig.rt, 'dl-fail', { downloads: true });
    expect(r).toMatchObject({ jobId: id, state: 'succeeded', outputPath: null, sha256: null });
    expect(r!.resultUrls).toHaveLength(1);
    expect(r!.failMsg).toMatch(/task succeeded but the download failed after 2 tries: .*ENOTDIR/);
  });
});
