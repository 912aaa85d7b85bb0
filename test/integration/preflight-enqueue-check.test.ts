import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderSampleImage } from '../../src/sim/images.js';
import { getBatchBudget } from '../../src/worker/budget.js';
import { runUpscale } from '../helpers/processes.js';
import { startLocalRig, type LocalRig } from './preflight-fixtures.js';

let rig: LocalRig;
let dir: string;
beforeAll(async () => {
  rig = await startLocalRig({ env: { OUTPUT_DIR: '' } });
  dir = await mkdtemp(join(tmpdir(), 'enqueue-check-'));
});
afterAll(async () => {
  await rig.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('upscale enqueue --check --max-credits', () => {
  it('rejects the lines that would fail the pre-flight, with their reasons, and stores the budget', async () => {
    const local = join(dir, 'ok.png');
    await writeFile(local, await renderSampleImage('ok', 40, 30, 'png'));
    const fake = join(dir, 'fake.png');
    await writeFile(fake, '<!DOCTYPE html><html>not an image</html>');
    const lines = [
      rig.image('fine', 64, 48, 'jpg'),
      `${rig.sim.url}/sim/images/notimage.jpg`,
      rig.image('wide', 3000, 2000, 'png'),
      local,
      fake,
      'ftp://nope/x.png',
    ];
    const file = join(dir, 'in.txt');
    await writeFile(file, lines.join('\n') + '\n');
    const res = await runUpscale(['enqueue', file, '--model', 'topaz/image-upscale', '--factor', '8', '--batch', 'chk-1', '--check', '--max-credits', '75.5', '--json'], rig.env);
    expect(res.code, res.stderr).toBe(1);
    const out = JSON.parse(res.stdout) as { enqueued: number; rejected: { line: number; reason: string }[] };
    expect(out.enqueued).toBe(2);
    expect(out.rejected.map((r) => r.line)).toEqual([2, 3, 5, 6]);
    expect(out.rejected[0]?.reason).toMatch(/^pre-flight: not an image \(the content is an HTML page\)/);
    expect(out.rejected[1]?.reason).toMatch(/^pre-flight: output would be 24000 px/);
    expect(out.rejected[2]?.reason).toMatch(/^pre-flight: not an image/);
    expect(out.rejected[3]?.reason).toMatch(/unsupported scheme "ftp:"/);
    expect(await getBatchBudget(rig.rt, 'chk-1')).toEqual({ maxCredits: 75.5, reserved: 0 });
    expect(rig.sim.stats().createAccepted).toBe(0);

    const bad = await runUpscale(['enqueue', '--url', lines[0]!, '--model', 'topaz/image-upscale', '--max-credits', 'lots'], rig.env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--max-credits "lots" must be a number of credits/);
  });
});
