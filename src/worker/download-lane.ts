/**
 * The download lane (with OUTPUT_URL or OUTPUT_DIR): fetches every result URL of a succeeded image before it
 * expires into a staging file, checks it, and only then stores it under its final name through `src/storage`
 * (store-output.ts: the batch's OUTPUT_NAME, default `<batchId>/<jobId>-<input basename>[-<n>].<ext>`; an object
 * already there with the same sha256 is not uploaded again). The file must decode as an image (sharp), and when
 * the input's size is known from the pre-flight, the output must be that size × the model's scale.
 *
 * The record gets `outputUrl`, `outputPath` (on disk only) and `sha256` of the first result. When the store refuses
 * the credentials or permissions (or the bucket is missing), the lane pauses with that reason (`upscale status`,
 * dashboard) and the job goes back to waiting: no try is spent and nothing is lost; `upscale resume` continues.
 * Any other failed try is repeated with exponential backoff (RETRY_BACKOFF, doubled) up to DOWNLOAD_RETRIES tries; a result URL that answers 403/404/410 is exchanged once for
 * a fresh link (kie.ai's download-url). After the last try the record stays `succeeded` (the task did succeed and
 * its result URLs are in the record) with `outputPath` null and a `failMsg` saying the download failed; the
 * failure is logged and counted (`upscale_downloads_total{result="failed"}`). DOWNLOAD_CONCURRENCY bounds the
 * downloads running at once in this process.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { DelayedError, Worker, type Job } from 'bullmq';
import pLimit from 'p-limit';
import sharp from 'sharp';
import { MODELS } from '../kie/models.js';
import type { DownloadJobData } from '../queue/job-data.js';
import { retryDelay } from '../queue/outcome.js';
import { pauseLane } from '../queue/pause-reason.js';
import { isStorageAuthError, isStorageError } from '../storage/index.js';
import type { LaneContext } from './context.js';
import { getInputFacts } from './prepare-input.js';
import { FetchRefused, guardedGet } from './ssrf.js';
import { alreadyStored, contentTypeOf, nameOf, storeResult, templateOf, type StagedResult } from './store-output.js';

/** Largest result file written. */
export const MAX_RESULT_BYTES = 512 * 1024 * 1024;

type DownloadJob = DownloadJobData & { tries?: number };

const EXT: Record<string, string> = { jpeg: 'jpg', png: 'png', webp: 'webp', gif: 'gif', tiff: 'tif', avif: 'avif' };

/** Streams `url` into a new file in the staging folder `dir`; checks it decodes; removes it on any failure. */
async function fetchTo(ctx: LaneContext, url: string, dir: string): Promise<StagedResult> {
  const { config, kie } = ctx.rt;
  const get = (u: string) => guardedGet(u, { allowPrivate: config.allowPrivateUrls, timeoutMs: Math.max(60_000, config.requestTimeoutMs * 4) });
  let res = await get(url);
  if ([403, 404, 410].includes(res.status)) {
    res.response.destroy();
    const fresh = await kie.getDownloadUrl(url).catch(() => null);
    if (fresh === null) throw new FetchRefused(`the result URL answered HTTP ${res.status} (expired?)`, false);
    res = await get(fresh);
  }
  if (res.status < 200 || res.status > 299) {
    res.response.destroy();
    throw new FetchRefused(`the result URL answered HTTP ${res.status}`, false);
  }
  if (res.contentLength !== null && res.contentLength > MAX_RESULT_BYTES) {
    res.response.destroy();
    throw new FetchRefused(`the result is ${res.contentLength} bytes, over the ${MAX_RESULT_BYTES}-byte limit`, true);
  }
  const temp = join(dir, `${randomBytes(8).toString('hex')}.part`);
  const hash = createHash('sha256');
  let size = 0;
  try {
    await pipeline(
      res.response,
      async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          size += chunk.length;
          if (size > MAX_RESULT_BYTES) throw new FetchRefused(`the result is over the ${MAX_RESULT_BYTES}-byte limit`, true);
          hash.update(chunk);
          yield chunk;
        }
      },
      createWriteStream(temp, { flags: 'wx' }),
    );
    if (res.contentLength !== null && size !== res.contentLength) {
      throw new FetchRefused(`the result broke off at ${size} of ${res.contentLength} bytes`, false);
    }
    const meta = await sharp(temp).metadata().catch((e: unknown) => {
      throw new FetchRefused(`the result does not decode as an image (${(e as Error).message.split('\n')[0]})`, false);
    });
    if (!meta.width || !meta.height) throw new FetchRefused('the result does not decode as an image', false);
    const ext = EXT[meta.format ?? ''] ?? (extname(new URL(res.url).pathname).slice(1) || 'bin');
    return { file: temp, sha256: hash.digest('hex'), width: meta.width, height: meta.height, ext, contentType: contentTypeOf(ext) };
  } catch (e) {
    await rm(temp, { force: true });
    throw e;
  }
}

export function downloadProcessor(ctx: LaneContext) {
  const { rt, log, counters } = ctx;
  const { config, store } = rt;
  const limit = pLimit(config.downloadConcurrency);

  return async function processDownload(job: Job<DownloadJob>, token?: string): Promise<{ outputPath: string | null; skipped?: string }> {
    const data = job.data;
    const storage = ctx.storage;
    if (!storage) return { outputPath: null, skipped: 'neither OUTPUT_URL nor OUTPUT_DIR is set' };
    const record = await store.getRecord(data.batchId, data.jobId);
    if (!record || record.state !== 'succeeded' || record.generation !== data.generation) {
      return { outputPath: null, skipped: `record is ${record ? `${record.state} (generation ${record.generation})` : 'gone'}` };
    }
    if (await alreadyStored(storage, record)) return { outputPath: record.outputPath, skipped: 'already stored' };
    const staged: StagedResult[] = [];
    try {
      const dir = await storage.stagingDir();
      const fetched = await Promise.allSettled(data.resultUrls.map((url) => limit(() => fetchTo(ctx, url, dir))));
      for (const f of fetched) if (f.status === 'fulfilled') staged.push(f.value);
      const failed = fetched.find((f) => f.status === 'rejected');
      if (failed) throw failed.reason;
      const files = staged;
      const first = files[0];
      if (!first) throw new FetchRefused('the task reported no result URL', true);
      const facts = await getInputFacts(rt, data.batchId, data.jobId);
      const scale = MODELS[record.model].scaleFor(record.factor);
      const expected = data.expected ?? (facts?.width && facts.height ? { width: facts.width * scale, height: facts.height * scale } : null);
      const mismatch =
        expected && (Math.abs(first.width - expected.width) > 2 || Math.abs(first.height - expected.height) > 2)
          ? `downloaded output is ${first.width}×${first.height}, expected ${expected.width}×${expected.height}`
          : null;
      const template = await templateOf(store, data.batchId, config.outputName);
      const stored = [];
      for (const [i, f] of files.entries()) stored.push(await storeResult(storage, nameOf(template, record, f, i), f, log));
      const out = (stored[0] as (typeof stored)[number]).stored;
      await store.transition(
        data.batchId,
        data.jobId,
        { outputPath: out.path, outputUrl: out.url, sha256: out.sha256, ...(mismatch ? { failMsg: mismatch } : {}) },
        { from: ['succeeded'] },
      );
      counters.inc('upscale_downloads_total', { result: mismatch ? 'unexpected_size' : 'ok' });
      const uploaded = stored.filter((s) => s.uploaded).length;
      if (mismatch) log.warn({ jobId: data.jobId, batchId: data.batchId, outputUrl: out.url }, mismatch);
      else log.info({ jobId: data.jobId, batchId: data.batchId, outputUrl: out.url, stored: uploaded, alreadyThere: stored.length - uploaded }, 'result stored');
      return { outputPath: out.path ?? out.url };
    } catch (e) {
      if (isStorageAuthError(e)) {
        // Every try would fail alike until someone fixes the credentials or permissions: pause, spend nothing.
        const message = `${e.message}. Fix it, then run \`upscale resume --lanes download\`.`;
        await pauseLane(rt.redis, store.keys, rt.queues.download, 'download', { code: 'storage', message });
        counters.inc('upscale_downloads_total', { result: 'paused' });
        log.error({ jobId: data.jobId, batchId: data.batchId }, `downloads paused: ${message}`);
        throw Worker.RateLimitError();
      }
      const tries = (data.tries ?? 0) + 1;
      const reason = e instanceof Error ? e.message : String(e);
      const permanent = (e instanceof FetchRefused && e.permanent) || (isStorageError(e) && !e.retryable);
      if (!permanent && tries < config.downloadRetries) {
        const delay = retryDelay(tries, config.retryBackoffMs, config.maxBackoffMs);
        counters.inc('upscale_downloads_total', { result: 'retry' });
        log.warn({ jobId: data.jobId, batchId: data.batchId, tries, delayMs: delay, reason }, 'download failed; trying again later');
        await job.updateData({ ...data, tries });
        await job.moveToDelayed(Date.now() + delay, token);
        throw new DelayedError();
      }
      const failMsg = `task succeeded but the download failed after ${tries} ${tries === 1 ? 'try' : 'tries'}: ${reason}`;
      await store.transition(data.batchId, data.jobId, { outputPath: null, outputUrl: null, sha256: null, failMsg }, { from: ['succeeded'] });
      counters.inc('upscale_downloads_total', { result: 'failed' });
      log.error({ jobId: data.jobId, batchId: data.batchId, tries, reason }, 'download failed for good; the result URLs stay in the record');
      return { outputPath: null };
    } finally {
      await Promise.all(staged.map((f) => rm(f.file, { force: true })));
    }
  };
}
