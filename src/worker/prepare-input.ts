/**
 * The default input preparation of the submit lane (`PrepareInput`), run before any credit is spent:
 *
 * 1. pre-flight: a bounded read of the image's head (URL through the SSRF guard, or the local file) checks format,
 *    size and output size; a failure records the image `failed` with failCode `preflight` and no createTask.
 *    The facts of an image that passed are kept (`<batch>:inputs`, JSON per image) so a re-run of the job does not
 *    fetch again, and the download lane knows the expected output size;
 * 2. credit budget: with `--max-credits`, the image's estimated price is reserved atomically; past the budget the
 *    image is recorded `cancelled` with failCode `budget`;
 * 3. local files (a path or file:// URL) are uploaded through kie.ai's stream upload just before submission; the
 *    copy is remembered on the job (`uploadedUrl`, `uploadedAt`) so a retry does not upload again, and uploaded again
 *    when older than UPLOAD_LIFETIME;
 * 4. the send gate (create-gate.ts): the steps above take a variable time after the limiter let the job start, so
 *    the image takes the next globally spaced createTask slot before it is sent.
 */
import { fileURLToPath } from 'node:url';
import { isKieError } from '../kie/errors.js';
import type { SubmitJobData } from '../queue/job-data.js';
import { outcomeFor } from '../queue/outcome.js';
import type { Runtime } from '../runtime.js';
import { reserveCredits } from './budget.js';
import { waitForSendSlot } from './create-gate.js';
import type { PrepareInput, PreparedInput } from './context.js';
import { preflight, type ImageFacts, type PreflightOptions } from './preflight.js';
import { priceOf } from './prices.js';

export function isRemoteUrl(input: string): boolean {
  return /^https?:\/\//i.test(input);
}

export function localPath(input: string): string {
  return input.startsWith('file://') ? fileURLToPath(input) : input;
}

/** The Redis hash of a batch's pre-flight facts (image id → JSON `ImageFacts`). */
export function inputFactsKey(rt: Runtime, batchId: string): string {
  return `${rt.store.keys.batch(batchId)}:inputs`;
}

/** The pre-flight facts kept for an image, or null. */
export async function getInputFacts(rt: Runtime, batchId: string, jobId: string): Promise<ImageFacts | null> {
  const raw = await rt.redis.hget(inputFactsKey(rt, batchId), jobId);
  if (raw === null) return null;
  try {
    return JSON.parse(raw) as ImageFacts;
  } catch {
    return null;
  }
}

export interface PrepareOptions {
  /** Seams of the pre-flight fetch (tests): address policy, resolver, timeouts. `allowPrivate` comes from config. */
  preflight?: Omit<PreflightOptions, 'allowPrivate'>;
  /** @defaultValue `Date.now` */
  now?: () => number;
}

export function createPrepareInput(rt: Runtime, options: PrepareOptions = {}): PrepareInput {
  const { config, log } = rt;
  const now = options.now ?? Date.now;
  const preflightOptions: PreflightOptions = { ...options.preflight, allowPrivate: config.allowPrivateUrls };

  /**
   * Pre-flight facts of the image: kept ones for a URL or a still-fresh upload, else checked now (a local file is
   * read again, so one that vanished since the last run is caught before an upload is attempted).
   */
  async function check(data: SubmitJobData, remote: boolean, fresh: boolean, signal?: AbortSignal): Promise<{ facts: ImageFacts } | PreparedInput> {
    if (remote || fresh) {
      const kept = await getInputFacts(rt, data.batchId, data.jobId);
      if (kept) return { facts: kept };
    }
    const target = remote ? { url: data.input } : { path: localPath(data.input) };
    const result = await preflight(target, data.model, data.factor, signal ? { ...preflightOptions, signal } : preflightOptions);
    // An aborted fetch says nothing about the image: the caller (the submit lane) gives the job back.
    if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
    if (!result.ok) {
      log.info({ jobId: data.jobId, batchId: data.batchId, reason: result.reason }, 'pre-flight refused the image');
      const unreadable = !remote && result.unreadable === true;
      return { ok: false, state: 'failed', failCode: unreadable ? 'input' : 'preflight', failMsg: result.reason };
    }
    const key = inputFactsKey(rt, data.batchId);
    await rt.redis.multi().hset(key, data.jobId, JSON.stringify(result.facts)).pexpire(key, rt.store.retentionMs).exec();
    return { facts: result.facts };
  }

  async function upload(data: SubmitJobData, signal?: AbortSignal): Promise<PreparedInput> {
    const path = localPath(data.input);
    try {
      const uploaded = await rt.kie.uploadFileStream(path, { uploadPath: `kie-upscale-queue/${data.batchId}`, signal });
      log.info({ jobId: data.jobId, batchId: data.batchId }, 'local file uploaded');
      return { ok: true, url: uploaded.downloadUrl, update: { uploadedUrl: uploaded.downloadUrl, uploadedAt: now() } };
    } catch (e) {
      if (signal?.aborted) throw e;
      // A file that vanished or cannot be read since the pre-flight, or an upload kie.ai refuses for good.
      const outcome = outcomeFor(e);
      if (isKieError(e) && outcome.kind === 'fail') return { ok: false, state: 'failed', failCode: `upload-${outcome.failCode}`, failMsg: `upload of ${path} failed: ${outcome.failMsg}` };
      throw e; // transient (network, 5xx, 429): the job is retried by BullMQ with backoff
    }
  }

  return async (data, signal) => {
    const remote = isRemoteUrl(data.input);
    const fresh = !remote && data.uploadedUrl !== undefined && data.uploadedAt !== undefined && now() - data.uploadedAt < config.uploadLifetimeMs;
    const checked = await check(data, remote, fresh, signal);
    if ('ok' in checked) return checked;
    const price = priceOf(config.priceTable, data.model, data.factor, checked.facts);
    const reservation = await reserveCredits(rt, data.batchId, data.jobId, price.credits);
    if (!reservation.ok) return { ok: false, state: 'cancelled', failCode: 'budget', failMsg: reservation.reason };
    const prepared: PreparedInput = remote
      ? { ok: true, url: data.input }
      : fresh
        ? { ok: true, url: data.uploadedUrl as string }
        : await upload(data, signal);
    // The work above took a variable time since the limiter let this job start: take a spaced send slot.
    if (prepared.ok) await waitForSendSlot(rt);
    return prepared;
  };
}

/** The submit lane's default: `createPrepareInput(rt)`. */
export const defaultPrepareInput = (rt: Runtime): PrepareInput => createPrepareInput(rt);
