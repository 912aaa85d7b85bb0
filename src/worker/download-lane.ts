/**
 * The download lane (with OUTPUT_URL or OUTPUT_DIR): fetches every result URL of a succeeded image before it
 * expires into a temp file in the storage's staging folder (`storage.stagingDir()`), verifies it, and only then
 * stores it under its final name through `src/storage` (store-output.ts: the batch's OUTPUT_NAME, default
 * `<batchId>/<jobId>-<input basename>[-<n>].<ext>`; an object already there with the same sha256 is not uploaded
 * again). The body is decoded by its Content-Encoding (http-body.ts), its bytes on the wire must match
 * Content-Length where one is given, and the file is verified (verify-output.ts) before it is stored: complete,
 * fully decodable, and its displayed size equal to the input's displayed size (from the pre-flight) × the model's
 * scale. An output turned by 90° is kept and flagged (`orientationMismatch`). Nothing is ever visible under the
 * final name before the whole verified content is (file: a link renamed into place; S3: a single PUT, or a
 * multipart upload that S3 shows only once completed and that is aborted on failure).
 *
 * The record gets `outputUrl` (`file:///...` or `s3://bucket/key`, never a credential), `outputPath` (on disk
 * only) and `sha256` of the first result. A failure of the STORE rather than of the image (credentials or
 * permissions refused, bucket missing, store unreachable, timing out, answering 5xx or throttling, disk full:
 * `isStoreFault`) pauses the lane with that reason (code `storage`: `upscale status`, dashboard) and the job goes
 * back to waiting: no try is spent and nothing is lost. A store probe (lane-probe.ts) resumes the lane once a probe
 * write works; `upscale resume --lanes download` resumes at once. Any other failed try (the result's transfer or
 * verification, a stored checksum that does not match) removes its temp file and is repeated with exponential backoff
 * (RETRY_BACKOFF, doubled) up to DOWNLOAD_RETRIES tries; a result URL that answers 403/404/410 is exchanged once
 * for a fresh link (kie.ai's download-url). After the last try nothing is stored for it and the record stays
 * `succeeded` (the task did succeed and its result URLs are in the record) with `outputPath` / `outputUrl` null,
 * `outputProblem` saying why and a `failMsg` saying the download failed; the failure is logged and counted
 * (`upscale_downloads_total{result="failed"}`). DOWNLOAD_CONCURRENCY bounds the downloads running at once in this
 * process. The drain deadline (`ctx.stopper.aborted`) aborts transfers and uploads alike; the job is given back.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { extname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { DelayedError, Worker, type Job } from 'bullmq';
import pLimit from 'p-limit';
import { MODELS } from '../kie/models.js';
import type { DownloadJobData } from '../queue/job-data.js';
import { retryDelay } from '../queue/outcome.js';
import type { ResultRecord } from '../results/record.js';
import { thumbKey } from '../results/thumbs.js';
import { inputName, isStorageAuthError, isStorageError, isStoreFault } from '../storage/index.js';
import { pauseDownloadsForStore } from './lane-probe.js';
import type { LaneContext } from './context.js';
import { partPath } from './part-files.js';
import { getInputFacts } from './prepare-input.js';
import { decodedBody } from './http-body.js';
import { inDecodeSlot, outputPixelProblem } from './decode-slots.js';
import { isStopError } from './shutdown.js';
import { FetchRefused, guardedGet } from './ssrf.js';
import { thumbnailsAfterDownload } from './thumbnails.js';
import { verifyOutput, type OutputExpectation } from './verify-output.js';
import { alreadyStored, contentTypeOf, nameOf, storeResult, templateOf, type StagedResult } from './store-output.js';

/** Whole-exchange deadline of one result download: at least a minute, else 4 × KIE_REQUEST_TIMEOUT (ms). */
export function downloadTimeoutMs(requestTimeoutMs: number): number {
  return Math.max(60_000, requestTimeoutMs * 4);
}

/** Largest result file written. */
export const MAX_RESULT_BYTES = 512 * 1024 * 1024;

type DownloadJob = DownloadJobData & { tries?: number };

/** A result fetched and verified, still in its staging file (the lane removes it once stored). */
export type Downloaded = StagedResult & { orientationMismatch: boolean };

/** File extension (no dot) of sharp's format names. */
const EXT: Record<string, string> = { jpeg: 'jpg', png: 'png', webp: 'webp', gif: 'gif', tiff: 'tif', avif: 'avif' };

/** `<jobId>-<input basename without extension>`, safe as a file name (the staging file's stem). */
export function outputStem(record: Pick<ResultRecord, 'jobId' | 'input'>): string {
  const stem = inputName(record.input);
  return stem === '' ? record.jobId : `${record.jobId}-${stem}`;
}

/**
 * Streams `url` into a temp file in the staging folder `dir` and verifies it (verify-output.ts); returns the staged,
 * verified file. The worker's drain deadline (`ctx.stopper.aborted`) aborts it; the temp file is removed on any
 * failure (on success the caller removes it once stored).
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
    const tooBig = await outputPixelProblem(temp);
    if (tooBig !== null) throw new FetchRefused(tooBig, true);
    const verdict = await inDecodeSlot(() => verifyOutput(temp, expectation));
    if (!verdict.ok) throw new FetchRefused(verdict.problem, false);
    const ext = EXT[verdict.format] ?? (extname(new URL(res.url).pathname).slice(1) || 'bin');
    return {
      file: temp,
      sha256: hash.digest('hex'),
      width: verdict.width,
      height: verdict.height,
      ext,
      contentType: contentTypeOf(ext),
      orientationMismatch: verdict.orientationMismatch,
    };
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
    const storage = ctx.storage;
    if (!storage) {
      await settle('skipped');
      return { outputPath: null, skipped: 'neither OUTPUT_URL nor OUTPUT_DIR is set' };
    }
    const record = await store.getRecord(data.batchId, data.jobId);
    if (!record || record.state !== 'succeeded' || record.generation !== data.generation) {
      return { outputPath: null, skipped: `record is ${record ? `${record.state} (generation ${record.generation})` : 'gone'}` };
    }
    const stem = outputStem(record);
    const staged: Downloaded[] = [];
    try {
      if (await alreadyStored(storage, record)) {
        if (record.download === 'pending') await settle('done');
        return { outputPath: record.outputPath ?? record.outputUrl, skipped: 'already stored' };
      }
      const dir = await storage.stagingDir();
      const scale = MODELS[record.model].scaleFor(record.factor);
      // The input's displayed size, as the pre-flight recorded it (its facts are forgotten once createTask is
      // accepted; a record from before inputWidth existed falls back to them).
      const facts = record.inputWidth && record.inputHeight ? null : await getInputFacts(rt, data.batchId, data.jobId);
      const shown = record.inputWidth && record.inputHeight ? { width: record.inputWidth, height: record.inputHeight } : facts ? { width: facts.displayWidth ?? facts.width, height: facts.displayHeight ?? facts.height } : null;
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
      for (const r of settled) if (r.status === 'fulfilled') staged.push(r.value);
      const failure = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failure) throw failure.reason;
      const files = staged;
      const first = files[0];
      if (!first) throw new FetchRefused('the task reported no result URL', true);
      // Verified: now named (the batch's OUTPUT_NAME) and stored, each under its final name only once complete.
      const template = await templateOf(store, data.batchId, config.outputName);
      const names = files.map((f, i) => nameOf(template, record, f, i));
      const stored = [];
      for (const [i, f] of files.entries()) {
        ctx.stopper.throwIfDraining();
        stored.push(await storeResult(storage, names[i] as string, f, log, ctx.stopper.aborted));
      }
      const out = (stored[0] as (typeof stored)[number]).stored;
      // A re-run that found every result already stored makes the thumbnails only if they are missing.
      const fresh = stored.some((r) => r.uploaded) || !(await storage.exists(thumbKey(data.batchId, data.jobId, 'out-small.webp')).catch(() => false));
      if (fresh) await inDecodeSlot(() => thumbnailsAfterDownload(ctx, record, first.file));
      const turned = files.some((f) => f.orientationMismatch);
      await store.transition(
        data.batchId,
        data.jobId,
        { outputPath: out.path, outputUrl: out.url, sha256: out.sha256, download: 'done', outputProblem: null, orientationMismatch: turned },
        { from: ['succeeded'] },
      );
      counters.inc('upscale_downloads_total', { result: turned ? 'orientation_mismatch' : 'ok' });
      const uploaded = stored.filter((s) => s.uploaded).length;
      if (turned) {
        log.warn(
          { jobId: data.jobId, batchId: data.batchId, outputUrl: out.url, expected, got: { width: first.width, height: first.height } },
          'downloaded output is turned by 90° against the displayed input (EXIF orientation lost or applied twice)',
        );
      } else log.info({ jobId: data.jobId, batchId: data.batchId, outputUrl: out.url, stored: uploaded, alreadyThere: stored.length - uploaded }, 'result stored');
      return { outputPath: out.path ?? out.url };
    } catch (e) {
      // Stopping: not a failed try; the job is given back and downloads again elsewhere.
      ctx.stopper.throwIfAborted();
      if (isStopError(e)) throw e;
      if (isStoreFault(e)) {
        // The store's fault, not the image's (credentials, unreachable, 5xx, throttled, disk full): every image
        // would fail alike, so pause the lane, spend no try, and give the job back; a store probe resumes the lane.
        const reason = await pauseDownloadsForStore(ctx, e, isStorageAuthError(e));
        counters.inc('upscale_downloads_total', { result: 'paused' });
        log.error({ jobId: data.jobId, batchId: data.batchId }, `downloads paused: ${reason.message}`);
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
      await store.transition(
        data.batchId,
        data.jobId,
        { outputPath: null, outputUrl: null, sha256: null, outputProblem: reason, failMsg, download: 'failed' },
        { from: ['succeeded'] },
      );
      counters.inc('upscale_downloads_total', { result: 'failed' });
      log.error({ jobId: data.jobId, batchId: data.batchId, tries, reason }, 'download failed for good; the result URLs stay in the record');
      return { outputPath: null };
    } finally {
      await Promise.all(staged.map((f) => rm(f.file, { force: true })));
    }
  };
}
