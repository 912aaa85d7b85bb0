/**
 * Test images: URLs of the simulator's deterministic sample images, image buffers made the same way, their
 * size read back with sharp, and a raw HTTP call to a simulator as a kie.ai client would make it (without
 * going through src/kie, so the simulator's tests stand on their own).
 */
import sharp from 'sharp';
import { renderSampleImage, type SampleFormat } from '../../src/sim/index.js';

export type { SampleFormat } from '../../src/sim/index.js';

/** `GET /sim/images/<name>-<w>x<h>.<format>` of the simulator at `base`. */
export function sampleImageUrl(
  base: string,
  name: string,
  width = 64,
  height = 48,
  format: SampleFormat = 'png',
): string {
  return `${base}/sim/images/${name}-${width}x${height}.${format}`;
}

/** A sample image URL that is over 10 MB (an uncompressed PNG of 2000 × 1800). */
export function hugeImageUrl(base: string): string {
  return `${base}/sim/images/huge-2000x1800.png`;
}

/** A URL that claims image/jpeg and serves HTML. */
export function notAnImageUrl(base: string): string {
  return `${base}/sim/images/notimage.jpg`;
}

/** The bytes of a sample image, made exactly as the simulator serves it. */
export function makeImage(
  width: number,
  height: number,
  format: SampleFormat = 'png',
  name = 'img',
): Promise<Buffer> {
  return renderSampleImage(name, width, height, format);
}

/** Format and size of image bytes. */
export async function imageSize(
  data: Buffer | ArrayBuffer,
): Promise<{ format: string; width: number; height: number }> {
  const m = await sharp(Buffer.isBuffer(data) ? data : Buffer.from(data)).metadata();
  return { format: m.format ?? '?', width: m.width ?? 0, height: m.height ?? 0 };
}

export interface SimAnswer {
  status: number;
  /** The parsed JSON body, or undefined when the body is not JSON (tests read arbitrary fields of it). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
  text: string;
  headers: Headers;
}

export interface SimCallOptions {
  method?: string;
  /** Bearer key; null sends no Authorization header. @defaultValue `k` */
  key?: string | null;
  /** JSON body (sent with Content-Type application/json). */
  body?: unknown;
  /** A raw body (FormData, string...) instead of `body`. */
  rawBody?: string | FormData | Blob | Uint8Array;
  headers?: Record<string, string>;
}

/** One HTTP call to the simulator at `base`, with a User-Agent as kie.ai clients must send. */
export async function simCall(base: string, path: string, o: SimCallOptions = {}): Promise<SimAnswer> {
  const headers: Record<string, string> = { 'user-agent': 'sim-tests/1', ...o.headers };
  const key = o.key === undefined ? 'k' : o.key;
  if (key !== null) headers.authorization = `Bearer ${key}`;
  let body: string | FormData | Blob | Uint8Array | undefined = o.rawBody;
  if (o.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(o.body);
  }
  const res = await fetch(`${base}${path}`, {
    method: o.method ?? (body === undefined ? 'GET' : 'POST'),
    headers,
    body: body ?? null,
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text, headers: res.headers };
}

/** A topaz createTask body. */
export function topazBody(imageUrl: string, factor: unknown = '2', extra: Record<string, unknown> = {}) {
  return { model: 'topaz/image-upscale', input: { image_url: imageUrl, upscale_factor: factor }, ...extra };
}

/** A recraft createTask body. */
export function recraftBody(imageUrl: string, extra: Record<string, unknown> = {}) {
  return { model: 'recraft/crisp-upscale', input: { image: imageUrl }, ...extra };
}
