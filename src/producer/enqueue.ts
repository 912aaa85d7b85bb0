/**
 * The enqueue pipeline: parsed lines → validation → chunks → Redis. Per chunk the result records are created
 * first (one Lua call, which tells new images from known ones), then the submit jobs of the images still waiting
 * are added in one `addBulk`. Image ids are stable hashes, so running the same input again adds nothing, and a
 * crash between the two steps is repaired by the next run (a 'waiting' record gets its job again; BullMQ ignores
 * a job id it already has).
 *
 * Memory stays bounded: lines stream in, and at most IN_FLIGHT_CHUNKS chunks are held while Redis stores them;
 * reading and validating the next chunk overlaps with storing the previous ones.
 */
import { MODEL_NAMES, MODELS, resolveModel } from '../kie/models.js';
import { checkBatchId, imageJobId, newBatchId, submitJobId } from '../queue/identity.js';
import type { SubmitJobData } from '../queue/job-data.js';
import type { NewImage } from '../results/store.js';
import type { Runtime } from '../runtime.js';
import { DEFAULT_OUTPUT_NAME, parseNameTemplate, TemplateError, type NameTemplate } from '../storage/name-template.js';
import { EnqueueError, InputError } from './errors.js';
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
  /** How results will be named (`opts.outputName`, else OUTPUT_NAME). */
  template: NameTemplate;
}

/**
 * Checks the options before anything is read or stored: the batch id, the chunk size, and the default model and
 * factor (through the model registry). Throws `InputError` with a reason naming the option.
 */
export function checkEnqueueOptions(opts: EnqueueOptions = {}, defaultOutputName = DEFAULT_OUTPUT_NAME): CheckedOptions {
  const batchId = opts.batchId ?? newBatchId();
  const badBatch = checkBatchId(batchId);
  if (badBatch !== null) throw new InputError(badBatch);
  const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_CHUNK_SIZE) {
    throw new InputError(`chunk size ${chunkSize} must be a whole number from 1 to ${MAX_CHUNK_SIZE}`);
  }
  if (opts.model !== undefined) {
    const choice = resolveModel(opts.model, opts.factor);
    if (!choice.ok) throw new InputError(`model: ${choice.reason}`);
  } else if (opts.factor !== undefined) {
    const withFactors = MODEL_NAMES.filter((m) => MODELS[m].factors.length > 0);
    const choices = withFactors.map((m) => resolveModel(m, opts.factor));
    const failed = choices.find((c) => !c.ok);
    if (!choices.some((c) => c.ok) && failed && !failed.ok) throw new InputError(`factor: ${failed.reason}`);
  }
  let template: NameTemplate;
  try {
    template = parseNameTemplate(opts.outputName ?? defaultOutputName);
  } catch (e) {
    throw new InputError(e instanceof TemplateError ? e.message : String(e));
  }
  return { batchId, chunkSize, template };
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
  const { batchId, chunkSize, template } = checkEnqueueOptions(opts, rt.config.outputName);
  const pinned = await rt.store.pinOutputName(batchId, template.source);
  if (pinned !== template.source) {
    throw new InputError(
      `batch ${batchId} names its results by OUTPUT_NAME "${pinned}" (set when it was first enqueued), not "${template.source}": ` +
        'enqueue with the same OUTPUT_NAME, or into a new batch',
    );
  }
  const ctx = {
    cwd: process.cwd(),
    allowPrivateUrls: rt.config.allowPrivateUrls,
    defaultModel: opts.model,
    defaultFactor: opts.factor,
  };
  const rejected: Rejection[] = [];
  let read = 0;
  let enqueued = 0;
  let duplicates = 0;
  let failure: { error: unknown } | null = null;
  const inFlight = new Set<Promise<void>>();

  const report = () =>
    opts.onProgress?.({ read, enqueued, duplicates, rejected: rejected.length, ...extra() });

  const store = async (all: (ValidImage & { jobId: string; claim: string | null })[]): Promise<void> => {
    // Name claims are the first command of each chunk, so chunks claim in input order.
    const claims = all.filter((i) => i.claim !== null).map((i) => ({ jobId: i.jobId, line: i.line, name: i.claim as string }));
    const refused = await claimOutputNames(rt.redis, rt.store.keys, batchId, rt.store.retentionMs, claims);
    const taken = new Map<string, string>();
    refused.forEach((reason, i) => {
      if (reason !== null) taken.set(`${claims[i]?.jobId} ${claims[i]?.line}`, reason);
    });
    const images = all.filter((image) => {
      const reason = taken.get(`${image.jobId} ${image.line}`);
      if (reason !== undefined) rejected.push({ line: image.line, input: displayInput(image.input), reason });
      return reason === undefined;
    });
    if (images.length === 0) return;
    const records: NewImage[] = images.map(({ jobId, input, model, factor, line, meta }) => ({
      jobId,
      input,
      model,
      factor,
      line,
      ...(meta ? { meta } : {}),
    }));
    const flags = await rt.store.createRecords(batchId, records);
    const jobs = images.filter((_, i) => flags[i] !== 'exists').map((image) => submitJob(batchId, image));
    if (jobs.length > 0) await rt.queues.submit.addBulk(jobs);
    const created = flags.filter((f) => f === 'created').length;
    enqueued += created;
    duplicates += flags.length - created;
  };

  const dispatch = async (chunk: (Validation | Promise<Validation>)[]): Promise<void> => {
    const results = chunk.some((v) => v instanceof Promise)
      ? await Promise.all(chunk.map((v) => Promise.resolve(v)))
      : (chunk as Validation[]);
    const seen = new Set<string>();
    const images: (ValidImage & { jobId: string; claim: string | null })[] = [];
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
        rejected.push({ line: r.image.line, input: displayInput(r.image.input), reason: named.reason });
        continue;
      }
      seen.add(jobId);
      images.push({ ...r.image, jobId, claim: named.claim });
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
  return { batchId, enqueued, duplicates, rejected };
}
