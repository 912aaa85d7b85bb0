/**
 * The default input preparation of the submit lane (`PrepareInput`), run before any credit is spent:
 *
 * 0. completion window: once the batch's deadline passed, the image is recorded `expired` (nothing sent);
 * 1. expiry: a presigned link that expired (src/producer/expiry.ts) is recorded `failed` with failCode `expired`
 *    without fetching it;
 * 2. pre-flight (preflight.ts): the image is read whole (URL through the SSRF guard, or the local file) and checked:
 *    format, size, output size, complete, still (unless the batch allows animation); a failure records the image
 *    `failed` with failCode `preflight` (`access` when the host answered 401/403) and no createTask. The facts of
 *    an image that passed are kept (`<batch>:inputs`, JSON per image) so a re-run of the job does not fetch again
 *    and the download lane knows the expected output size; its displayed size and EXIF orientation go into the
 *    record (`inputWidth`, `inputHeight`, `inputOrientation`);
 * 3. credit budget: with `--max-credits`, the image's estimated price is reserved atomically; past the budget the
 *    image is recorded `cancelled` with failCode `budget` (and `batch.budget_reached` is stored, once);
 * 3b. credit runway: when the last read balance, less what was sent since, does not cover the image's price, the
 *    submit lane pauses with reason `credits` before kie.ai is asked (runway.ts);
 * 4. local files (a path or file:// URL) are uploaded through kie.ai's stream upload just before submission; the
 *    copy is remembered on the job (`uploadedUrl`, `uploadedAt`) so a retry does not upload again, and uploaded again
 *    when older than UPLOAD_LIFETIME.
 *
 * The createTask send gate (create-gate.ts) is passed by the submit lane after this, right before sending.
 */
import { fileURLToPath } from 'node:url';
import { isKieError } from '../kie/errors.js';
import { expiryProblem } from '../producer/expiry.js';
import type { SubmitJobData } from '../queue/job-data.js';
import { outcomeFor } from '../queue/outcome.js';
import type { Runtime } from '../runtime.js';
import { deadlineRefusal } from '../batch/deadline.js';
import { budgetReached, emit } from '../notify/index.js';
import { reserveCredits } from './budget.js';
import { pauseForCredits, takeFromRunway } from './runway.js';
import type { PrepareInput, PreparedInput } from './context.js';
import { allowsAnimated } from './input-policy.js';
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

/**
 * Forgets an image's pre-flight facts once kie.ai accepted its createTask: they serve the send (price, pre-flight
 * verdict) and nothing after it (the record keeps the displayed size the download lane checks against). About 220 B
 * of Redis per image in flight (issue 13's ≤ 2 KB); a later generation (a resubmission, a retry) checks the input
 * again, which also sees an input that changed meanwhile.
 */
export async function forgetInputFacts(rt: Runtime, batchId: string, jobId: string): Promise<void> {
  await rt.redis.hdel(inputFactsKey(rt, batchId), jobId);
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

  /** Pre-flight facts of the image, checked now (a local file is read again, so one that vanished since the last run is caught before an upload is attempted). */
  async function check(data: SubmitJobData, remote: boolean, allowAnimated: boolean, signal?: AbortSignal): Promise<{ facts: ImageFacts } | PreparedInput> {
    const target = remote ? { url: data.input } : { path: localPath(data.input) };
    const result = await preflight(target, data.model, data.factor, { ...preflightOptions, allowAnimated, ...(signal ? { signal } : {}) });
    // An aborted fetch says nothing about the image: the caller (the submit lane) gives the job back.
    if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
    if (!result.ok) {
      log.info({ jobId: data.jobId, batchId: data.batchId, reason: result.reason }, 'pre-flight refused the image');
      const unreadable = !remote && result.unreadable === true;
      const failCode = unreadable ? 'input' : result.kind === 'access' ? 'access' : 'preflight';
      return { ok: false, state: 'failed', failCode, failMsg: result.reason };
    }
    const key = inputFactsKey(rt, data.batchId);
    const f = result.facts;
    // Two keys, no order between them: one write to Redis.
    await Promise.all([
      rt.redis.multi().hset(key, data.jobId, JSON.stringify(f)).pexpire(key, rt.store.retentionMs).exec(),
      rt.store.transition(data.batchId, data.jobId, {
        inputWidth: f.displayWidth ?? f.width,
        inputHeight: f.displayHeight ?? f.height,
        inputOrientation: f.orientation ?? null,
      }),
    ]);
    return { facts: f };
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
    // Three reads, one round trip: the batch's completion window, the facts kept for a URL or a still-fresh upload,
    // and the batch's input policy (needed only when no facts are kept).
    const [closed, kept, allowAnimated] = await Promise.all([
      deadlineRefusal(rt, data.batchId, now()),
      remote || fresh ? getInputFacts(rt, data.batchId, data.jobId) : null,
      allowsAnimated(rt, data.batchId),
    ]);
    // The batch's completion window closed: nothing more is sent for it.
    if (closed) return { ok: false, state: 'expired', ...closed };
    const expired = remote ? expiryProblem(data.input, now()) : null;
    if (expired !== null) return { ok: false, state: 'failed', failCode: 'expired', failMsg: expired };
    const checked = kept ? { facts: kept } : await check(data, remote, allowAnimated, signal);
    if ('ok' in checked) return checked;
    const price = priceOf(config.priceTable, data.model, data.factor, checked.facts);
    const reservation = await reserveCredits(rt, data.batchId, data.jobId, price.credits);
    if (!reservation.ok) {
      await emit(rt, budgetReached({ batchId: data.batchId, maxCredits: reservation.maxCredits, reason: reservation.reason }, now()));
      return { ok: false, state: 'cancelled', failCode: 'budget', failMsg: reservation.reason };
    }
    // The credit runway: stop before kie.ai would answer 402 (runway.ts).
    const runway = await takeFromRunway(rt, data.jobId, price.credits);
    if (!runway.ok) return pauseForCredits(rt, runway.left, price.credits);
    const prepared: PreparedInput = remote
      ? { ok: true, url: data.input }
      : fresh
        ? { ok: true, url: data.uploadedUrl as string }
        : await upload(data, signal);
    return prepared;
  };
}

/** The submit lane's default: `createPrepareInput(rt)`. */
export const defaultPrepareInput = (rt: Runtime): PrepareInput => createPrepareInput(rt);
