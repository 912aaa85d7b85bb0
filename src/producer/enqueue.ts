/**
 * The enqueue pipeline: parsed lines → validation → chunks → Redis. Per chunk the result records are created
 * first (one Lua call, which tells new images from known ones), then the submit jobs of the images still waiting
 * are added in one `addBulk`, held for the batch scheduler, which admits them in fair order among batches. Image ids are stable hashes, so running the same input again adds nothing, and a
 * crash between the two steps is repaired by the next run (a 'waiting' record gets its job again; BullMQ ignores
 * a job id it already has).
 *
 * Memory stays bounded: lines stream in, and at most IN_FLIGHT_CHUNKS chunks are held while Redis stores them;
 * reading and validating the next chunk overlaps with storing the previous ones.
 */
import { MODEL_NAMES, MODELS, resolveModel } from '../kie/models.js';
import { checkBatchId, imageJobId, newBatchId, submitJobId } from '../queue/identity.js';
import { fairShareOf, isPriority, lookaheadFor, PRIORITIES, type Priority } from '../queue/fair-share.js';
import type { SubmitJobData } from '../queue/job-data.js';
import type { NewImage } from '../results/store.js';
import type { Runtime } from '../runtime.js';
import { holdsNewImages } from '../batch/pilot.js';
import { DEFAULT_OUTPUT_NAME, parseNameTemplate, TemplateError, type NameTemplate } from '../storage/name-template.js';
import { EnqueueError, InputError } from './errors.js';
import { expiryWarning, linkExpiry } from './expiry.js';
import { checkOutputName, claimOutputNames } from './output-names.js';
import { displayInput, type EnqueueOptions, type EnqueueProgress, type EnqueueResult, type ParsedLine, type Rejection } from './types.js';
import { validateLine, type ValidImage, type Validation } from './validate.js';

/** @defaultValue of `EnqueueOptions.chunkSize` */
export const DEFAULT_CHUNK_SIZE = 1000;
/** Largest chunk accepted (one Lua call and one MULTI each). */
export const MAX_CHUNK_SIZE = 10_000;
/** Chunks being stored in Redis at once while the next one is read. */
const IN_FLIGHT_CHUNKS = 3;

export interface CheckedOptions {
  batchId: string;
  chunkSize: number;
  priority: Priority | undefined;
  /** How results will be named (`opts.outputName`, else OUTPUT_NAME). */
  template: NameTemplate;
}

/**
 * Checks the options before anything is read or stored: the batch id, the chunk size, the priority, the default
 * model and factor (through the model registry) and the OUTPUT_NAME template (`opts.outputName`, else
 * `defaultOutputName`: the config's). Throws `InputError` with a reason naming the option.
 */
export function checkEnqueueOptions(opts: EnqueueOptions = {}, defaultOutputName = DEFAULT_OUTPUT_NAME): CheckedOptions {
  const batchId = opts.batchId ?? newBatchId();
  const badBatch = checkBatchId(batchId);
  if (badBatch !== null) throw new InputError(badBatch);
  const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_CHUNK_SIZE) {
    throw new InputError(`chunk size ${chunkSize} must be a whole number from 1 to ${MAX_CHUNK_SIZE}`);
  }
  const priority = opts.priority;
  if (priority !== undefined && !isPriority(priority)) {
    throw new InputError(`priority "${priority}" must be one of ${PRIORITIES.join(', ')}`);
  }
  if (opts.model !== undefined) {
    const choice = resolveModel(opts.model, opts.factor);
    if (!choice.ok) throw new InputError(`${choice.field}: ${choice.reason}`);
  } else if (opts.factor !== undefined) {
    // A default for the lines that give none: wrong only when no model takes it.
    const withFactors = MODEL_NAMES.filter((m) => MODELS[m].factors.length > 0);
    if (!withFactors.some((m) => resolveModel(m, opts.factor).ok)) {
      const takes = MODEL_NAMES.map((m) => `${m} ${MODELS[m].factors.length > 0 ? `takes ${MODELS[m].factors.join(', ')}` : 'takes none'}`);
      throw new InputError(`factor: ${String(opts.factor).trim()} is not a factor any model takes (${takes.join('; ')})`);
    }
  }
  let template: NameTemplate;
  try {
    template = parseNameTemplate(opts.outputName ?? defaultOutputName);
  } catch (e) {
    throw new InputError(e instanceof TemplateError ? e.message : String(e));
  }
  return { batchId, chunkSize, priority, template };
}

function submitJob(batchId: string, image: ValidImage & { jobId: string }) {
  const data: SubmitJobData = {
    jobId: image.jobId,
    batchId,
    input: image.input,
    model: image.model,
    factor: image.factor,
    generation: 0,
    ...(image.meta ? { meta: image.meta } : {}),
  };
  return { name: 'submit', data, opts: { jobId: submitJobId(image.jobId, 0) } };
}

/** An accepted image; `claim` is the output name it reserves in the batch (null when OUTPUT_NAME cannot collide). */
type StoredImage = ValidImage & { jobId: string; claim: string | null; expiresAt?: number; warning?: string };

/**
 * When the createTask of the `n`-th image accepted by this run is estimated to be sent (Unix ms): after every
 * submit job already waiting or delayed, at the create budget's rate (KIE_CREATE_LIMIT). An estimate: pre-flight
 * time, retries and other batches' priorities are not counted.
 */
async function submissionEstimator(rt: Runtime): Promise<(n: number, now: number) => number> {
  const ahead = await rt.queues.submit.getJobCountByTypes('waiting', 'delayed', 'prioritized', 'active');
  const { max, durationMs } = rt.config.createLimit;
  return (n, now) => now + Math.ceil(((ahead + n + 1) * durationMs) / max);
}

/**
 * Enqueues parsed lines (what `parseInput` yields, or items mapped to that shape). Lines carrying a `reason` are
 * rejected as they are. `extra` adds source facts (bytes read) to each progress report.
 */
export async function enqueueLines(
  rt: Runtime,
  lines: AsyncIterable<ParsedLine> | Iterable<ParsedLine>,
  opts: EnqueueOptions = {},
  extra: () => Partial<EnqueueProgress> = () => ({}),
): Promise<EnqueueResult> {
  const { batchId, chunkSize, priority, template } = checkEnqueueOptions(opts, rt.config.outputName);
  const pinned = await rt.store.pinOutputName(batchId, template.source);
  if (pinned !== template.source) {
    throw new InputError(
      `batch ${batchId} names its results by OUTPUT_NAME "${pinned}" (set when it was first enqueued), not "${template.source}": ` +
        'enqueue with the same OUTPUT_NAME, or into a new batch',
    );
  }
  const fair = fairShareOf(rt);
  const lookahead = lookaheadFor(rt.config.createLimit);
  // Set once, after the first chunk created the batch and before any of its images is held.
  let prioritySet: Promise<unknown> | null = null;
  const ctx = {
    cwd: process.cwd(),
    allowPrivateUrls: rt.config.allowPrivateUrls,
    defaultModel: opts.model,
    defaultFactor: opts.factor,
  };
  // Images added to a batch whose pilot is not approved yet wait behind it.
  const hold = opts.hold ?? (await holdsNewImages(rt, batchId));
  const rejected: Rejection[] = [];
  const warnings: Rejection[] = [];
  const submitAt = await submissionEstimator(rt);
  let accepted = 0;
  let read = 0;
  let enqueued = 0;
  let duplicates = 0;
  let failure: { error: unknown } | null = null;
  const inFlight = new Set<Promise<void>>();

  const report = () =>
    opts.onProgress?.({ read, enqueued, duplicates, rejected: rejected.length, ...extra() });

  const store = async (all: StoredImage[]): Promise<void> => {
    // Name claims are the first command of each chunk, so chunks claim in input order.
    const claims = all.filter((i) => i.claim !== null).map((i) => ({ jobId: i.jobId, line: i.line, name: i.claim as string }));
    const refused = await claimOutputNames(rt.redis, rt.store.keys, batchId, rt.store.retentionMs, claims);
    const taken = new Map<string, string>();
    refused.forEach((reason, i) => {
      if (reason !== null) taken.set(`${claims[i]?.jobId} ${claims[i]?.line}`, reason);
    });
    const images = all.filter((image) => {
      const reason = taken.get(`${image.jobId} ${image.line}`);
      if (reason === undefined) return true;
      rejected.push({ line: image.line, input: displayInput(image.originalInput ?? image.input), reason });
      // A refused image gets no link-expiry warning: it will not be submitted.
      const warned = warnings.findIndex((w) => w.line === image.line);
      if (warned >= 0) warnings.splice(warned, 1);
      return false;
    });
    if (images.length === 0) return;
    const records: NewImage[] = images.map(({ jobId, input, originalInput, model, factor, line, meta, expiresAt, warning }) => ({
      jobId,
      input,
      model,
      factor,
      line,
      ...(meta ? { meta } : {}),
      ...(originalInput === undefined ? {} : { originalInput }),
      ...(expiresAt === undefined ? {} : { inputExpiresAt: expiresAt }),
      ...(warning === undefined ? {} : { inputWarning: warning }),
    }));
    const flags = await rt.store.createRecords(batchId, records, Date.now(), hold ? 'held' : 'waiting');
    if (priority !== undefined) await (prioritySet ??= fair.setPriority(batchId, priority));
    // A pilot-held image gets its submit job when released; a 'waiting' one that exists may be missing its job (repair).
    const jobs = images.filter((_, i) => flags[i] === 'waiting' || (flags[i] === 'created' && !hold)).map((image) => submitJob(batchId, image));
    // Held for the batch scheduler, not waiting: it admits them in fair order (src/queue/fair-share.ts).
    if (jobs.length > 0) {
      await fair.holdJobs(batchId, jobs);
      // Start at once if the lane is idle, rather than at a worker's next admission tick.
      await fair.admit(lookahead);
    }
    const created = flags.filter((f) => f === 'created').length;
    enqueued += created;
    duplicates += flags.length - created;
  };

  const dispatch = async (chunk: (Validation | Promise<Validation>)[]): Promise<void> => {
    const results = chunk.some((v) => v instanceof Promise)
      ? await Promise.all(chunk.map((v) => Promise.resolve(v)))
      : (chunk as Validation[]);
    const seen = new Set<string>();
    const images: StoredImage[] = [];
    for (const r of results) {
      if (!r.ok) {
        rejected.push(r.rejection);
        continue;
      }
      const jobId = imageJobId(batchId, r.image.model, r.image.factor, r.image.input);
      if (seen.has(jobId)) {
        duplicates += 1; // the same image twice in one chunk
        continue;
      }
      const named = checkOutputName(template, batchId, { ...r.image, jobId });
      if (!named.ok) {
        rejected.push({ line: r.image.line, input: displayInput(r.image.originalInput ?? r.image.input), reason: named.reason });
        continue;
      }
      seen.add(jobId);
      const image: StoredImage = { ...r.image, jobId, claim: named.claim };
      const expiry = /^https?:/i.test(image.input) ? linkExpiry(image.input) : null;
      if (expiry !== null) {
        image.expiresAt = expiry.expiresAt;
        const now = Date.now();
        const soon = expiryWarning(image.input, submitAt(accepted, now), now);
        if (soon !== null) {
          image.warning = soon.warning;
          warnings.push({ line: image.line, input: displayInput(image.originalInput ?? image.input), reason: soon.warning });
        }
      }
      accepted += 1;
      images.push(image);
    }
    if (images.length === 0) return report();
    while (inFlight.size >= IN_FLIGHT_CHUNKS) await Promise.race(inFlight);
    if (failure) return;
    const task: Promise<void> = store(images)
      .then(report, (error: unknown) => {
        failure ??= { error };
      })
      .finally(() => inFlight.delete(task));
    inFlight.add(task);
  };

  try {
    let chunk: (Validation | Promise<Validation>)[] = [];
    for await (const line of lines) {
      read += 1;
      chunk.push(validateLine(line, ctx));
      if (chunk.length >= chunkSize) {
        await dispatch(chunk);
        chunk = [];
        if (failure) break;
      }
    }
    if (chunk.length > 0 && !failure) await dispatch(chunk);
  } finally {
    await Promise.all(inFlight);
  }
  if (failure) throw new EnqueueError(batchId, enqueued, (failure as { error: unknown }).error);
  report();
  rejected.sort((a, b) => a.line - b.line);
  warnings.sort((a, b) => a.line - b.line);
  // Read after the images are in: a pause written meanwhile holds them too. Only new images are warned about: a run of
  // duplicates added nothing to hold.
  const gate = enqueued > 0 ? await fair.gateOf(batchId) : null;
  const batchPaused =
    gate?.state === 'paused'
      ? `batch ${batchId} is paused${gate.reason ? ` (${gate.reason})` : ''}: its new images hold until \`upscale resume --batch ${batchId}\``
      : undefined;
  return { batchId, enqueued, duplicates, rejected, warnings, ...(batchPaused === undefined ? {} : { batchPaused }) };
}
