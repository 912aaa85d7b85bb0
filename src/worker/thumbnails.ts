/**
 * Before/after thumbnails for the batch page, made once by the download lane when an output is accepted: the input
 * (fetched again through the SSRF guard, or read from its local path) and the downloaded output, each as a small
 * WebP (SMALL_PX, for the table) and a preview (PREVIEW_PX, for the comparison view), both fitted inside the same
 * square so input and output share one frame. Written beside the outputs, in `OUTPUT_DIR/<batchId>/.thumbs/`:
 * `<jobId>-in.webp`, `<jobId>-in-small.webp`, `<jobId>-out.webp`, `<jobId>-out-small.webp` (atomically: temp file,
 * then rename). The dashboard serves them behind its auth (src/server/batch-thumbs.ts).
 *
 * Thumbnails are a convenience: a failure (input gone, not decodable) is logged and leaves the download accepted.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import sharp, { type Sharp } from 'sharp';
import { MAX_INPUT_BYTES } from '../kie/models.js';
import type { ResultRecord } from '../results/record.js';
import { thumbPath, thumbsDir, type ThumbFile } from '../results/thumbs.js';
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

async function writeWebp(image: Sharp, px: number, path: string): Promise<void> {
  const data = await image.clone().resize(px, px, { fit: 'inside', withoutEnlargement: false }).webp({ quality: 78 }).toBuffer();
  const temp = `${path}.${randomBytes(4).toString('hex')}.part`;
  try {
    await writeFile(temp, data, { flag: 'wx' });
    await rename(temp, path);
  } catch (e) {
    await rm(temp, { force: true });
    throw e;
  }
}

/** Makes the four thumbnails of a succeeded image whose output is at `outputPath`. Throws on any failure. */
export async function makeThumbnails(ctx: LaneContext, record: Pick<ResultRecord, 'batchId' | 'jobId' | 'input'>, outputPath: string): Promise<void> {
  const outputDir = ctx.rt.config.outputDir;
  if (!outputDir) return;
  await mkdir(thumbsDir(outputDir, record.batchId), { recursive: true });
  const at = (file: ThumbFile) => thumbPath(outputDir, record.batchId, record.jobId, file);
  const output = sharp(outputPath, { limitInputPixels: 1e9 }).rotate();
  await writeWebp(output, PREVIEW_PX, at('out.webp'));
  await writeWebp(output, SMALL_PX, at('out-small.webp'));
  const input = sharp(await inputBytes(ctx, record.input)).rotate();
  await writeWebp(input, PREVIEW_PX, at('in.webp'));
  await writeWebp(input, SMALL_PX, at('in-small.webp'));
}

/** The download lane's hook: `makeThumbnails`, with a failure logged and counted instead of thrown. */
export async function thumbnailsAfterDownload(ctx: LaneContext, record: Pick<ResultRecord, 'batchId' | 'jobId' | 'input'>, outputPath: string): Promise<void> {
  try {
    await makeThumbnails(ctx, record, outputPath);
    ctx.counters.inc('upscale_thumbnails_total', { result: 'ok' });
  } catch (e) {
    ctx.counters.inc('upscale_thumbnails_total', { result: 'failed' });
    ctx.log.warn({ jobId: record.jobId, batchId: record.batchId, reason: e instanceof Error ? e.message : String(e) }, 'thumbnails not made (the download stands)');
  }
}
