/** Bounded decoding of results (src/worker/decode-slots.ts): the pixel limit from the header, one decode at a time. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DECODE_SLOTS, inDecodeSlot, MAX_OUTPUT_PIXELS, outputPixelProblem } from '../../src/worker/decode-slots.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'decode-slots-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('decode slots', () => {
  it('refuses an output over the pixel limit from its header, saying its size and the limit', async () => {
    const file = join(dir, 'big.png');
    await sharp({ create: { width: 1200, height: 1000, channels: 3, background: '#808080' } }).png().toFile(file);
    expect(await outputPixelProblem(file, 1_000_000)).toBe(
      'the output is 1200×1000 (1200000 pixels), over the 1000000-pixel limit of this worker (MAX_OUTPUT_PIXELS)',
    );
    expect(await outputPixelProblem(file, 1_200_000)).toBeNull();
    expect(await outputPixelProblem(file)).toBeNull();
    expect(MAX_OUTPUT_PIXELS).toBeGreaterThanOrEqual(12000 * 12000); // topaz ×8 of 1500×1500 passes
    // Not an image: left to the verification, which says why.
    expect(await outputPixelProblem(join(dir, 'missing.png'))).toBeNull();
  });

  it('runs at most DECODE_SLOTS decodes at once', async () => {
    let running = 0;
    let peak = 0;
    const step = async () => {
      running += 1;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 20));
      running -= 1;
    };
    await Promise.all(Array.from({ length: 6 }, () => inDecodeSlot(step)));
    expect(peak).toBe(DECODE_SLOTS);
  });
});
