/**
 * The download lane (with OUTPUT_DIR): fetches every result URL of a succeeded image before it expires and writes
 * it atomically (a temp file in the same folder, renamed when complete and checked) to
 * `OUTPUT_DIR/<batchId>/<jobId>-<input basename>[-<n>].<ext>`. The body is decoded by its Content-Encoding
 * (http-body.ts), its bytes on the wire must match Content-Length where one is given, and the file is verified
 * (verify-output.ts) before the rename: complete, fully decodable, and its displayed size equal to the input's
 * displayed size (from the pre-flight) × the model's scale. An output turned by 90° is kept and flagged
 * (`orientationMismatch`).
 *
 * The record gets `outputPath` (the first result) and `sha256`. A failed try (transfer or verification) removes
 * its temp file and is repeated with exponential backoff (RETRY_BACKOFF, doubled) up to DOWNLOAD_RETRIES tries; a
 * result URL that answers 403/404/410 is exchanged once for a fresh link (kie.ai's download-url). After the last
 * try nothing is in OUTPUT_DIR for it and the record stays `succeeded` (the task did succeed and its result URLs
 * are in the record) with `outputPath` null, `outputProblem` saying why and a `failMsg` saying the download
 * failed; the failure is logged and counted (`upscale_downloads_total{result="failed"}`). DOWNLOAD_CONCURRENCY
 * bounds the downloads running at once in this process.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { DelayedError, type Job } from 'bullmq';
import pLimit from 'p-limit';
import { MODELS } from '../kie/models.js';
import type { DownloadJobData } from '../queue/job-data.js';
import { retryDelay } from '../queue/outcome.js';
import type { ResultRecord } from '../results/record.js';
import type { LaneContext } from './context.js';
import { partPath } from './part-files.js';
import { getInputFacts } from './prepare-input.js';
import { decodedBody } from './http-body.js';
import { isStopError } from './shutdown.js';
import { FetchRefused, guardedGet } from './ssrf.js';
import { thumbnailsAfterDownload } from './thumbnails.js';
import { verifyOutput, type OutputExpectation } from './verify-output.js';

/** Whole-exchange deadline of one result download: at least a minute, else 4 × KIE_REQUEST_TIMEOUT (ms). */
export function downloadTimeoutMs(requestTimeoutMs: number): number {
  return Math.max(60_000, requestTimeoutMs * 4);
}

/** Largest result file written. */
export const MAX_RESULT_BYTES = 512 * 1024 * 1024;

type DownloadJob = DownloadJobData & { tries?: number };

export interface Downloaded {
  path: string;
  sha256: string;
  width: number;
  height: number;
  orientationMismatch: boolean;
}

const EXT: Record<string, string> = { jpeg: '.jpg', png: '.png', webp: '.webp', gif: '.gif', tiff: '.tif', avif: '.avif' };

/** `<jobId>-<input basename without extension>`, safe as a file name. */
export function outputStem(record: Pick<ResultRecord, 'jobId' | 'input'>): string {
  let name: string;
  try {
    name = /^https?:/i.test(record.input) ? decodeURIComponent(basename(new URL(record.input).pathname)) : basename(record.input);
  } catch {
    name = basename(record.input);
  }
  const stem = name.slice(0, name.length - extname(name).length).replace(/[^\w.-]+/g, '_').replace(/^[.]+/, '').slice(0, 80);
  return stem === '' ? record.jobId : `${record.jobId}-${stem}`;
}

/**
 * Streams `url` into `dir/<stem><ext>` through a temp file; verifies it (verify-output.ts); returns where it went. The
 * worker's drain deadline (`ctx.stopper.aborted`) aborts it; the temp file is removed whatever ends it.
 */
async function fetchTo(ctx: LaneContext, url: string, dir: string, stem: string, expectation: OutputExpectation): Promise<Downloaded> {
  const { config, kie } = ctx.rt;
  const signal = ctx.stopper.aborted;
  const get = (u: string) => guardedGet(u, { allowPrivate: config.allowPrivateUrls, timeoutMs: downloadTimeoutMs(config.requestTimeoutMs), signal });
  let res = await get(url);
  if ([403, 404, 410].includes(res.status)) {
    res.response.destroy();
    const fresh = await kie.getDownloadUrl(url, { signal }).catch(() => null);
    ctx.stopper.throwIfAborted();
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
  const temp = partPath(dir, stem);
  const hash = createHash('sha256');
  let size = 0;
  try {
    const body = decodedBody(res.response);
    await pipeline(
      body.stream,
      async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          size += chunk.length;
          if (size > MAX_RESULT_BYTES) throw new FetchRefused(`the result is over the ${MAX_RESULT_BYTES}-byte limit`, true);
          hash.update(chunk);
          yield chunk;
        }
      },
      createWriteStream(temp, { flags: 'wx' }),
    ).catch((e: unknown) => {
      if (e instanceof FetchRefused) throw e;
      throw new FetchRefused(`the result broke off after ${body.wireBytes()} bytes (${(e as Error).message})`, false);
    });
    if (res.contentLength !== null && body.wireBytes() !== res.contentLength) {
      throw new FetchRefused(`the result broke off at ${body.wireBytes()} of ${res.contentLength} bytes (Content-Length)`, false);
    }
    const verdict = await verifyOutput(temp, expectation);
    if (!verdict.ok) throw new FetchRefused(verdict.problem, false);
    const ext = EXT[verdict.format] ?? (extname(new URL(res.url).pathname) || '.bin');
    const path = join(dir, stem + ext);
    await rename(temp, path);
    return { path, sha256: hash.digest('hex'), width: verdict.width, height: verdict.height, orientationMismatch: verdict.orientationMismatch };
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
    /** Ends a pending download without a file (the batch's finalizer waits for every pending one). */
    const settle = (download: 'done' | 'skipped') =>
      store.transition(data.batchId, data.jobId, { download }, { from: ['succeeded'] }).then(() => undefined);
    if (!config.outputDir) {
      await settle('skipped');
      return { outputPath: null, skipped: 'OUTPUT_DIR is not set' };
    }
    const record = await store.getRecord(data.batchId, data.jobId);
    if (!record || record.state !== 'succeeded' || record.generation !== data.generation) {
      return { outputPath: null, skipped: `record is ${record ? `${record.state} (generation ${record.generation})` : 'gone'}` };
    }
    if (record.outputPath && record.sha256 && (await stat(record.outputPath).catch(() => null))) {
      if (record.download === 'pending') await settle('done');
      return { outputPath: record.outputPath, skipped: 'already downloaded' };
    }
    const dir = join(config.outputDir, data.batchId);
    const stem = outputStem(record);
    try {
      await mkdir(dir, { recursive: true });
      const facts = await getInputFacts(rt, data.batchId, data.jobId);
      const scale = MODELS[record.model].scaleFor(record.factor);
      const shown = facts ? { width: facts.displayWidth ?? facts.width, height: facts.displayHeight ?? facts.height } : null;
      const expected = data.expected ?? (shown?.width && shown.height ? { width: shown.width * scale, height: shown.height * scale } : null);
      // A download still queued for a slot when the drain begins does not start; every started one settles (its
      // temp file removed if it did not complete) before the job ends.
      const settled = await Promise.allSettled(
        data.resultUrls.map((url, i) =>
          limit(() => {
            ctx.stopper.throwIfDraining();
            return fetchTo(ctx, url, dir, i === 0 ? stem : `${stem}-${i + 1}`, { expected });
          }),
        ),
      );
      const failure = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failure) throw failure.reason;
      const files = settled.map((r) => (r as PromiseFulfilledResult<Downloaded>).value);
      const first = files[0];
      if (!first) throw new FetchRefused('the task reported no result URL', true);
      await thumbnailsAfterDownload(ctx, record, first.path);
      const turned = files.some((f) => f.orientationMismatch);
      await store.transition(
        data.batchId,
        data.jobId,
        { outputPath: first.path, sha256: first.sha256, download: 'done', outputProblem: null, orientationMismatch: turned },
        { from: ['succeeded'] },
      );
      counters.inc('upscale_downloads_total', { result: turned ? 'orientation_mismatch' : 'ok' });
      if (turned) {
        log.warn(
          { jobId: data.jobId, batchId: data.batchId, outputPath: first.path, expected, got: { width: first.width, height: first.height } },
          'downloaded output is turned by 90° against the displayed input (EXIF orientation lost or applied twice)',
        );
      } else log.info({ jobId: data.jobId, batchId: data.batchId, outputPath: first.path }, 'result downloaded');
      return { outputPath: first.path };
    } catch (e) {
      // Stopping: not a failed try; the job is given back and downloads again elsewhere.
      ctx.stopper.throwIfAborted();
      if (isStopError(e)) throw e;
      const tries = (data.tries ?? 0) + 1;
      const reason = e instanceof Error ? e.message : String(e);
      const permanent = e instanceof FetchRefused && e.permanent;
      if (!permanent && tries < config.downloadRetries) {
        const delay = retryDelay(tries, config.retryBackoffMs, config.maxBackoffMs);
        counters.inc('upscale_downloads_total', { result: 'retry' });
        log.warn({ jobId: data.jobId, batchId: data.batchId, tries, delayMs: delay, reason }, 'download failed; trying again later');
        await job.updateData({ ...data, tries });
        await job.moveToDelayed(Date.now() + delay, token);
        throw new DelayedError();
      }
      const failMsg = `task succeeded but the download failed after ${tries} ${tries === 1 ? 'try' : 'tries'}: ${reason}`;
      await store.transition(data.batchId, data.jobId, { outputPath: null, sha256: null, outputProblem: reason, failMsg, download: 'failed' }, { from: ['succeeded'] });
      counters.inc('upscale_downloads_total', { result: 'failed' });
      log.error({ jobId: data.jobId, batchId: data.batchId, tries, reason }, 'download failed for good; the result URLs stay in the record');
      return { outputPath: null };
    }
  };
}
