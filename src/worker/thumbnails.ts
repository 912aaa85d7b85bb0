/**
 * Before/after thumbnails for the batch page, made once by the download lane when an output is accepted: the input
 * (fetched again through the SSRF guard, or read from its local path) and the downloaded output, each as a small
 * WebP (SMALL_PX, for the table) and a preview (PREVIEW_PX, for the comparison view), both fitted inside the same
 * square so input and output share one frame. Stored beside the outputs through the lane's storage (OUTPUT_URL /
 * OUTPUT_DIR), under `<batchId>/.thumbs/`: `<jobId>-in.webp`, `<jobId>-in-small.webp`, `<jobId>-out.webp`,
 * `<jobId>-out-small.webp` (each written atomically, as any stored object). The dashboard serves them behind its
 * auth (src/server/batch-detail.ts).
 *
 * Thumbnails are a convenience: a failure (input gone, not decodable) is logged and leaves the download accepted.
 */
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import sharp, { type Sharp } from 'sharp';
import { MAX_INPUT_BYTES } from '../kie/models.js';
import type { ResultRecord } from '../results/record.js';
import { thumbKey, type ThumbFile } from '../results/thumbs.js';
import type { Storage } from '../storage/index.js';
import type { LaneContext } from './context.js';
import { isRemoteUrl, localPath } from './prepare-input.js';
import { FetchRefused, guardedGet, readHead } from './ssrf.js';

/** Longest side of a preview (comparison view), px. */
export const PREVIEW_PX = 640;
/** Longest side of a small thumbnail (table), px. */
export const SMALL_PX = 96;

async function inputBytes(ctx: LaneContext, input: string): Promise<Buffer> {
  if (!isRemoteUrl(input)) return readFile(localPath(input));
  const res = await guardedGet(input, { allowPrivate: ctx.rt.config.allowPrivateUrls, timeoutMs: Math.max(30_000, ctx.rt.config.requestTimeoutMs * 2) });
  if (res.status < 200 || res.status > 299) {
    res.response.destroy();
    throw new FetchRefused(`the input answered HTTP ${res.status}`, true);
  }
  const read = await readHead(res.response, MAX_INPUT_BYTES + 1);
  if (!read.complete || read.head.length > MAX_INPUT_BYTES) throw new FetchRefused(`the input is over ${MAX_INPUT_BYTES} bytes`, true);
  return read.head;
}

async function writeWebp(storage: Storage, image: Sharp, px: number, key: string): Promise<void> {
  const data = await image.clone().resize(px, px, { fit: 'inside', withoutEnlargement: false }).webp({ quality: 78 }).toBuffer();
  await storage.put(key, Readable.from([data]), { contentType: 'image/webp' });
}

/**
 * Makes the four thumbnails of a succeeded image whose verified output is the local file `outputFile` (the
 * download lane's staged copy) and stores them through `ctx.storage`. Throws on any failure.
 */
export async function makeThumbnails(ctx: LaneContext, record: Pick<ResultRecord, 'batchId' | 'jobId' | 'input'>, outputFile: string): Promise<void> {
  const storage = ctx.storage;
  if (!storage) return;
  const at = (file: ThumbFile) => thumbKey(record.batchId, record.jobId, file);
  // One pass over the (possibly huge) output, read in order (sequentialRead: strips, not the whole image);
  // the small one is made from the preview, not by decoding the output again.
  const preview = await sharp(outputFile, { limitInputPixels: false, sequentialRead: true })
    .rotate()
    .resize(PREVIEW_PX, PREVIEW_PX, { fit: 'inside', withoutEnlargement: false })
    .png({ compressionLevel: 1 })
    .toBuffer();
  const output = sharp(preview);
  await writeWebp(storage, output, PREVIEW_PX, at('out.webp'));
  await writeWebp(storage, output, SMALL_PX, at('out-small.webp'));
  const input = sharp(await inputBytes(ctx, record.input)).rotate();
  await writeWebp(storage, input, PREVIEW_PX, at('in.webp'));
  await writeWebp(storage, input, SMALL_PX, at('in-small.webp'));
}

/** The download lane's hook: `makeThumbnails`, with a failure logged and counted instead of thrown. */
export async function thumbnailsAfterDownload(ctx: LaneContext, record: Pick<ResultRecord, 'batchId' | 'jobId' | 'input'>, outputFile: string): Promise<void> {
  try {
    await makeThumbnails(ctx, record, outputFile);
    ctx.counters.inc('upscale_thumbnails_total', { result: 'ok' });
  } catch (e) {
    ctx.counters.inc('upscale_thumbnails_total', { result: 'failed' });
    ctx.log.warn({ jobId: record.jobId, batchId: record.batchId, reason: e instanceof Error ? e.message : String(e) }, 'thumbnails not made (the download stands)');
  }
}
