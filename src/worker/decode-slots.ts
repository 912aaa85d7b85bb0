/**
 * Bounds the memory of decoding results. Verification (every pixel decoded, src/worker/verify-output.ts) and the
 * thumbnails of a large output (topaz ×8 of 1500×1500 is 12000×12000: 144 Mpx, 432 MB as RGB) are the download
 * lane's big allocations; DOWNLOAD_CONCURRENCY transfers may run at once, but only `DECODE_SLOTS` decodes do, so the
 * peak is about one decode's working set, not DOWNLOAD_CONCURRENCY of them. libvips' operation cache is off (it would
 * keep decoded strips of finished images) and it uses `DECODE_THREADS` threads per image (each thread holds its own
 * strip buffers).
 *
 * A result over `MAX_OUTPUT_PIXELS` is refused from its header alone, before any decode, with an outputProblem
 * saying so (`outputPixelProblem`).
 */
import pLimit from 'p-limit';
import sharp from 'sharp';

/** Decodes at once per process. */
export const DECODE_SLOTS = 1;
/** libvips threads per decode. */
export const DECODE_THREADS = 2;
/** Largest result accepted, in pixels (width × height): 16384², over any upscaler's 8× of a 2048² input. */
export const MAX_OUTPUT_PIXELS = 16384 * 16384;

sharp.cache(false);
sharp.concurrency(DECODE_THREADS);

const slots = pLimit(DECODE_SLOTS);

/** Runs `step` (a decode: verification, thumbnails) when a decode slot is free. */
export function inDecodeSlot<T>(step: () => Promise<T>): Promise<T> {
  return slots(step);
}

/**
 * Reads only the header of the image at `path`: a problem (for the record's outputProblem) when it is over
 * `maxPixels`, else null. An unreadable header is left to the verification, which says why.
 */
export async function outputPixelProblem(path: string, maxPixels = MAX_OUTPUT_PIXELS): Promise<string | null> {
  const meta = await sharp(path, { limitInputPixels: false }).metadata().catch(() => null);
  if (!meta?.width || !meta.height) return null;
  const pixels = meta.width * meta.height;
  return pixels > maxPixels ? `the output is ${meta.width}×${meta.height} (${pixels} pixels), over the ${maxPixels}-pixel limit of this worker (MAX_OUTPUT_PIXELS)` : null;
}
