/**
 * The real work behind a successful task: sharp enlarges the input (topaz: by the factor; recraft: ×2 with a
 * sharpen) and writes it in the input's format. A small queue bounds how many run at once, so a thousand
 * tiny tasks do not swamp two cores.
 */
import pLimit, { type LimitFunction } from 'p-limit';
import sharp from 'sharp';
import { SIM_RECRAFT } from './options.js';

export interface Upscaled {
  data: Buffer;
  /** File extension of the output: jpg, png or webp. */
  ext: string;
  mimeType: string;
  width: number;
  height: number;
}

const OUTPUT: Record<string, { ext: string; mimeType: string }> = {
  jpeg: { ext: 'jpg', mimeType: 'image/jpeg' },
  png: { ext: 'png', mimeType: 'image/png' },
  webp: { ext: 'webp', mimeType: 'image/webp' },
};

export class Upscaler {
  private readonly limit: LimitFunction;
  private stopped = false;

  constructor(concurrency: number) {
    this.limit = pLimit(concurrency);
  }

  /** Upscales `input` (jpeg, png or webp bytes) for `model` with `factor` (topaz) or ×2 (recraft). */
  run(input: Buffer, model: string, factor: string | null): Promise<Upscaled> {
    return this.limit(async () => {
      if (this.stopped) throw new Error('the simulator stopped');
      const meta = await sharp(input).metadata();
      const width = meta.width ?? 0;
      const height = meta.height ?? 0;
      const scale = model === SIM_RECRAFT ? 2 : Number(factor ?? '2');
      const out = OUTPUT[meta.format ?? ''] ?? { ext: 'png', mimeType: 'image/png' };
      const targetW = width * scale;
      const targetH = height * scale;
      let img = sharp(input, { limitInputPixels: false }).resize(targetW, targetH, {
        fit: 'fill',
        kernel: 'lanczos3',
      });
      if (model === SIM_RECRAFT) img = img.sharpen();
      if (out.ext === 'jpg') img = img.jpeg({ quality: 90 });
      else if (out.ext === 'webp') img = img.webp({ quality: 90 });
      else img = img.png();
      const data = await img.toBuffer();
      return { data, ext: out.ext, mimeType: out.mimeType, width: targetW, height: targetH };
    });
  }

  /** Upscales waiting or running. */
  get busy(): number {
    return this.limit.activeCount + this.limit.pendingCount;
  }

  /** Upscales that have not started yet fail at once from now on (stop). */
  stop(): void {
    this.stopped = true;
  }
}
