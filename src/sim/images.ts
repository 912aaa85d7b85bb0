/**
 * Deterministic sample images, served at `GET /sim/images/<name>-<w>x<h>.<jpg|jpeg|png|webp|gif>` so tests and
 * the demo can enqueue URLs the simulator itself serves. The picture is a gradient whose colours come from a
 * hash of the name, with stripes so an upscale is visible.
 *
 * - A name starting with `huge` renders an uncompressed PNG (about width × height × 3 bytes) for the 10 MB check.
 * - `/sim/images/notimage.jpg` claims `image/jpeg` but sends HTML, to prove input types are read from the bytes.
 * - `.gif` renders a real image in a format kie.ai refuses.
 * - A name starting with `anim<N>-` renders N frames (2-100) as an animated WebP or GIF (PNG stays one frame).
 * - A name starting with `rot<N>-` (N = 1-8) carries EXIF orientation N; the stored pixels are `<w>x<h>`, so
 *   orientations 5-8 are displayed `<h>x<w>`.
 * - A name starting with `cut<P>-` (P = 1-99) is the first P % of the file's bytes: a truncated image, served
 *   with a Content-Length that matches what is sent.
 * - A name starting with `zero<K>-` (K = 1-99) has K KiB zeroed from the middle of the file on: complete (every
 *   end marker in place) but damaged inside, the fault only decoding finds.
 */
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { hash32 } from './random.js';

export type SampleFormat = 'jpg' | 'jpeg' | 'png' | 'webp' | 'gif';

/** Largest sample image side, and largest area, the route renders. */
export const SAMPLE_MAX_SIDE = 20_000;
export const SAMPLE_MAX_PIXELS = 25_000_000;

const MIME: Record<SampleFormat, string> = {
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  gif: 'image/gif',
};

export const NOT_AN_IMAGE =
  '<!DOCTYPE html><html><head><title>Not an image</title></head><body>garbage</body></html>\n';

/** Parses `<name>-<w>x<h>.<ext>`; null when the name does not have that shape. */
export function parseSampleName(
  file: string,
): { name: string; width: number; height: number; format: SampleFormat } | null {
  const m = /^([A-Za-z0-9_.-]+?)-(\d{1,5})x(\d{1,5})\.(jpg|jpeg|png|webp|gif)$/.exec(file);
  if (!m) return null;
  return { name: m[1] as string, width: Number(m[2]), height: Number(m[3]), format: m[4] as SampleFormat };
}

/** Raw RGB pixels of the sample picture for `name`. */
function pixels(name: string, width: number, height: number): Buffer {
  const h = hash32(name);
  const r0 = h & 0xff;
  const g0 = (h >>> 8) & 0xff;
  const b0 = (h >>> 16) & 0xff;
  const stripe = 4 + ((h >>> 24) % 12);
  const data = Buffer.allocUnsafe(width * height * 3);
  let i = 0;
  for (let y = 0; y < height; y++) {
    const gy = Math.floor((y * 255) / Math.max(1, height - 1));
    for (let x = 0; x < width; x++) {
      const gx = Math.floor((x * 255) / Math.max(1, width - 1));
      const band = Math.floor((x + y) / stripe) % 2 === 0 ? 0 : 48;
      data[i++] = (r0 + gx) & 0xff;
      data[i++] = (g0 + gy) & 0xff;
      data[i++] = (b0 + band) & 0xff;
    }
  }
  return data;
}

/** Renders the sample image `name` at `width` × `height` in `format`. */
export async function renderSampleImage(
  name: string,
  width: number,
  height: number,
  format: SampleFormat,
): Promise<Buffer> {
  if (
    width < 1 ||
    height < 1 ||
    width > SAMPLE_MAX_SIDE ||
    height > SAMPLE_MAX_SIDE ||
    width * height > SAMPLE_MAX_PIXELS
  ) {
    throw new RangeError(
      `sample images are 1 to ${SAMPLE_MAX_SIDE} px a side and at most ${SAMPLE_MAX_PIXELS} px in all`,
    );
  }
  const cut = /^cut(\d{1,2})-/.exec(name);
  if (cut) {
    const whole = await renderSampleImage(name.slice(cut[0].length), width, height, format);
    return whole.subarray(0, Math.max(1, Math.floor((whole.length * Number(cut[1])) / 100)));
  }
  const zero = /^zero(\d{1,2})-/.exec(name);
  if (zero) {
    const damaged = Buffer.from(await renderSampleImage(name.slice(zero[0].length), width, height, format));
    const from = Math.floor(damaged.length / 2);
    damaged.fill(0, from, Math.max(from, Math.min(damaged.length - 16, from + Number(zero[1]) * 1024)));
    return damaged;
  }
  const anim = /^anim(\d{1,3})-/.exec(name);
  if (anim && (format === 'webp' || format === 'gif')) {
    const count = Math.min(100, Math.max(2, Number(anim[1])));
    const frames = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        sharp(pixels(`${name}#${i}`, width, height), { raw: { width, height, channels: 3 } }).png().toBuffer(),
      ),
    );
    const joined = sharp(frames, { join: { animated: true } });
    return format === 'webp' ? joined.webp({ quality: 80, loop: 0 }).toBuffer() : joined.gif({ loop: 0 }).toBuffer();
  }
  let img = sharp(pixels(name, width, height), { raw: { width, height, channels: 3 } });
  const rot = /^rot([1-8])-/.exec(name);
  if (rot) img = img.withMetadata({ orientation: Number(rot[1]) });
  if (name.startsWith('huge')) return img.png({ compressionLevel: 0, adaptiveFiltering: false }).toBuffer();
  switch (format) {
    case 'jpg':
    case 'jpeg':
      return img.jpeg({ quality: 85 }).toBuffer();
    case 'png':
      return img.png().toBuffer();
    case 'webp':
      return img.webp({ quality: 85 }).toBuffer();
    case 'gif':
      return img.gif().toBuffer();
  }
}

/** A small cache of rendered samples, bounded by total bytes (oldest out first). */
class SampleCache {
  private entries = new Map<string, Promise<Buffer>>();
  private sizes = new Map<string, number>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  get(key: string, render: () => Promise<Buffer>): Promise<Buffer> {
    const hit = this.entries.get(key);
    if (hit) return hit;
    const p = render();
    this.entries.set(key, p);
    p.then(
      (buf) => {
        if (!this.entries.has(key)) return;
        this.sizes.set(key, buf.length);
        this.bytes += buf.length;
        for (const old of this.entries.keys()) {
          if (this.bytes <= this.maxBytes || old === key) break;
          this.bytes -= this.sizes.get(old) ?? 0;
          this.sizes.delete(old);
          this.entries.delete(old);
        }
      },
      () => this.entries.delete(key),
    );
    return p;
  }
}

/** Registers `GET /sim/images/:file` (no key needed: these stand for any public image host). */
export function registerImageRoutes(app: FastifyInstance): void {
  const cache = new SampleCache(256 * 1024 * 1024);
  app.get<{ Params: { file: string } }>('/sim/images/:file', async (request, reply) => {
    const file = request.params.file;
    if (file === 'notimage.jpg') return reply.type('image/jpeg').send(NOT_AN_IMAGE);
    const spec = parseSampleName(file);
    if (!spec)
      return reply
        .code(404)
        .type('text/plain')
        .send(`no sample image "${file}"; use <name>-<w>x<h>.<jpg|png|webp|gif>\n`);
    let data: Buffer;
    try {
      data = await cache.get(file, () => renderSampleImage(spec.name, spec.width, spec.height, spec.format));
    } catch (e) {
      return reply
        .code(400)
        .type('text/plain')
        .send(`${(e as Error).message}\n`);
    }
    const type = spec.name.startsWith('huge') ? 'image/png' : MIME[spec.format];
    return reply.type(type).header('cache-control', 'public, max-age=86400').send(data);
  });
}
