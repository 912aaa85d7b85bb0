import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { runUpscale } from '../helpers/processes.js';

let dir: string;
let sim: Simulator;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'estimate-'));
  sim = await startSimulator({ apiKeys: ['k'] });
});
afterAll(async () => {
  await sim.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('upscale estimate', () => {
  it('counts the images and prices them from the table, saying what it assumed', async () => {
    const file = join(dir, 'in.jsonl');
    const rows = [
      { url: 'https://img.example.com/a.png' },
      { url: 'https://img.example.com/b.png', factor: 4 },
      { url: 'https://img.example.com/c.png', model: 'recraft/crisp-upscale' },
      { url: 'notaurl:x' },
    ];
    await writeFile(file, rows.map((r) => JSON.stringify(r)).join('\n'));
    const text = await runUpscale(['estimate', file, '--model', 'topaz/image-upscale', '--factor', '2'], { PRICE_TABLE: '{"recraft": 1}' });
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/topaz\/image-upscale\s+2\s+1\s+20\s+\*/);
    expect(text.stdout).toMatch(/topaz\/image-upscale\s+4\s+1\s+40\s+\*/);
    expect(text.stdout).toMatch(/recraft\/crisp-upscale\s+-\s+1\s+1\n/);
    expect(text.stdout).toMatch(/total\s+3\s+61\n/);
    expect(text.stdout).toMatch(/\* 2 images: topaz priced for inputs up to 2048 px/);
    expect(text.stderr).toMatch(/line 4: notaurl:x: unsupported scheme "notaurl:"/);
  });

  it('a bad --model or --factor is a usage error naming its flag', async () => {
    const file = join(dir, 'one.txt');
    await writeFile(file, 'https://img.example.com/a.png\n');
    const [factor, model] = await Promise.all([
      runUpscale(['estimate', file, '--model', 'topaz/image-upscale', '--factor', '3'], {}),
      runUpscale(['estimate', file, '--model', 'nope'], {}),
    ]);
    expect(factor.code).toBe(2);
    expect(factor.stderr).toContain('upscale: --factor: factor 3 is not one of 1, 2, 4, 8 for topaz/image-upscale');
    expect(model.code).toBe(2);
    expect(model.stderr).toContain('upscale: --model: unknown model "nope"');
    // A plain list and no --model: said once, as enqueue says it (it printed "total 0 0" and exited 0).
    const none = await runUpscale(['estimate', file], {});
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('upscale: --model is needed: none of the 1 image names its own model');
  });

  it('--probe prices by the real size and counts out what would fail; --json', async () => {
    const urls = [`${sim.url}/sim/images/s-500x400.png`, `${sim.url}/sim/images/m-1500x900.webp`, `${sim.url}/sim/images/notimage.jpg`];
    const res = await runUpscale(['estimate', ...urls.flatMap((u) => ['--url', u]), '--model', 'topaz/image-upscale', '--factor', '4', '--probe', '--json'], { ALLOW_PRIVATE_URLS: 'true' });
    expect(res.code, res.stderr).toBe(0);
    const r = JSON.parse(res.stdout) as Record<string, unknown>; // 500 px × 4 → 2K (10), 1500 px × 4 → 8K (40)
    expect(r).toMatchObject({ images: 2, credits: 50, assumed: 0, assumption: null, probed: true });
    expect(r.rejected).toEqual([{ line: 3, input: urls[2], reason: expect.stringMatching(/^pre-flight: not an image/) as unknown }]);
  });
});
