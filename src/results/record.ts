/** The result record of one image (the JSONL export line) and the summary of a batch. */
import { pathToFileURL } from 'node:url';
import type { Factor, ModelName } from '../kie/models.js';
import type { BatchGate, Priority } from '../queue/fair-share.js';

/**
 * Every state of an image. `held`: enqueued behind a pilot, waiting for `upscale approve` (no submit job yet).
 * `expired`: not submitted before the batch's completion window (`--deadline`) closed; nothing was paid.
 */
export const STATES = ['waiting', 'held', 'submitting', 'polling', 'succeeded', 'failed', 'timed_out', 'cancelled', 'expired'] as const;
export type RecordState = (typeof STATES)[number];
export const TERMINAL_STATES: readonly RecordState[] = ['succeeded', 'failed', 'timed_out', 'cancelled', 'expired'];
export const ACTIVE_STATES: readonly RecordState[] = ['waiting', 'held', 'submitting', 'polling'];

export function isTerminal(state: RecordState): boolean {
  return TERMINAL_STATES.includes(state);
}

export interface ResultRecord {
  jobId: string;
  batchId: string;
  /** The input as used: the URL checked and submitted (encoded once when not valid as written) or local path. */
  input: string;
  /** The URL as written, when `input` is its encoded form (src/producer/input-url.ts); else null. */
  originalInput: string | null;
  /** When a presigned input link expires (Unix ms), when the URL says (src/producer/expiry.ts). */
  inputExpiresAt: number | null;
  /** Set at enqueue when the link will likely expire before its estimated submission. */
  inputWarning: string | null;
  /** The input's displayed size (after its EXIF orientation), px, from the pre-flight. */
  inputWidth: number | null;
  inputHeight: number | null;
  /** The input's EXIF orientation (1-8), from the pre-flight; null without one. */
  inputOrientation: number | null;
  model: ModelName;
  factor: Factor | null;
  state: RecordState;
  taskId: string | null;
  resultUrls: string[];
  /** Local path of the first stored result, when results are stored on disk (OUTPUT_DIR / file:// OUTPUT_URL); null on S3. */
  outputPath: string | null;
  /** Where the first result is stored (`file:///...` or `s3://bucket/key`), without credentials. */
  outputUrl: string | null;
  /** sha256 of the stored result (also in the S3 object's metadata). */
  sha256: string | null;
  /** Why no verified output was stored (OUTPUT_URL / OUTPUT_DIR) after the download's retries (src/worker/verify-output.ts). */
  outputProblem: string | null;
  /**
   * True when the downloaded output is the expected size turned by 90° (the input's EXIF orientation was not
   * applied, or applied twice); the file is kept. Null until downloaded.
   */
  orientationMismatch: boolean | null;
  failCode: string | null;
  failMsg: string | null;
  creditsConsumed: number | null;
  /** How long the task ran at kie.ai, in ms: its `completeTime - createTime`; null when kie did not report both. */
  costTimeMs: number | null;
  /** kie's raw `costTime`, unit as reported (whole seconds live, milliseconds per the docs); null when absent. */
  kieCostTime: number | null;
  /** kie's last `state` word as sent (`"success"`, `"FAILED"`, `""`), when the task ended; null when absent. */
  kieState: string | null;
  enqueuedAt: number;
  submittedAt: number | null;
  completedAt: number | null;
  updatedAt: number;
  /** createTask calls made for this image, over every generation. */
  submitAttempts: number;
  /** createTask calls whose outcome is unknown (timeout, crash after sending): kie.ai may hold a task for them. */
  ambiguousSubmits: number;
  /** recordInfo calls made for this image. */
  polls: number;
  /** 0 at first; +1 per resubmission of a server-side failure or `upscale retry`. */
  generation: number;
  /** Line of the input file it came from, when enqueued from a file. */
  line: number | null;
  /** Extra columns of the input line (a CSV's `sku`, a JSON line's other fields); `{}` when none. */
  meta: Record<string, string>;
  /**
   * The download of a succeeded image (with OUTPUT_URL / OUTPUT_DIR): `pending` until the download lane is done with it
   * (`done`, `failed`, `skipped`). A batch is not finished while any download is pending. Absent in older records.
   */
  download?: 'pending' | 'done' | 'failed' | 'skipped' | null;
  /**
   * The previous task of an image that went back for a new one (an automatic resubmission of a 5xx failure, or
   * `upscale retry`): its taskId, failCode and failMsg (kie.ai's, or ours for a timeout) as they were when it went
   * back. Kept through a later cancel; replaced when the next task goes back in turn. Absent (undefined) when the
   * image never went back; not an export column (see the JSON record, `upscale show`, the batch page).
   */
  lastTaskId?: string | null;
  lastFailCode?: string | null;
  lastFailMsg?: string | null;
}

/** The export's column order (ARCHITECTURE.md's record, then the extras). */
export const RECORD_FIELDS: readonly (keyof ResultRecord)[] = [
  'jobId',
  'batchId',
  'input',
  'model',
  'factor',
  'state',
  'taskId',
  'resultUrls',
  'outputPath',
  'failCode',
  'failMsg',
  'creditsConsumed',
  'costTimeMs',
  'submittedAt',
  'completedAt',
  'submitAttempts',
  'polls',
  'ambiguousSubmits',
  'generation',
  'sha256',
  'enqueuedAt',
  'updatedAt',
  'line',
  'meta',
  'kieCostTime',
  'kieState',
  'originalInput',
  'inputExpiresAt',
  'inputWarning',
  'inputWidth',
  'inputHeight',
  'inputOrientation',
  'outputProblem',
  'orientationMismatch',
  'outputUrl',
];

export function newRecord(
  fields: Pick<ResultRecord, 'jobId' | 'batchId' | 'input' | 'model' | 'factor'> &
    Partial<Pick<ResultRecord, 'line' | 'originalInput' | 'inputExpiresAt' | 'inputWarning'>> & {
      meta?: Record<string, string> | undefined;
    },
  now: number,
): ResultRecord {
  return {
    jobId: fields.jobId,
    batchId: fields.batchId,
    input: fields.input,
    originalInput: fields.originalInput ?? null,
    inputExpiresAt: fields.inputExpiresAt ?? null,
    inputWarning: fields.inputWarning ?? null,
    inputWidth: null,
    inputHeight: null,
    inputOrientation: null,
    model: fields.model,
    factor: fields.factor,
    state: 'waiting',
    taskId: null,
    resultUrls: [],
    outputPath: null,
    outputUrl: null,
    sha256: null,
    outputProblem: null,
    orientationMismatch: null,
    failCode: null,
    failMsg: null,
    creditsConsumed: null,
    costTimeMs: null,
    kieCostTime: null,
    kieState: null,
    enqueuedAt: now,
    submittedAt: null,
    completedAt: null,
    updatedAt: now,
    submitAttempts: 0,
    ambiguousSubmits: 0,
    polls: 0,
    generation: 0,
    line: fields.line ?? null,
    meta: fields.meta ?? {},
  };
}

/** The fields a new record holds as `null` (no value yet): not stored while null, and put back by `parseRecord`. */
const NULL_FIELDS = (() => {
  const blank = newRecord({ jobId: '', batchId: '', input: '', model: 'topaz/image-upscale', factor: null }, 0);
  return (Object.keys(blank) as (keyof ResultRecord)[]).filter((k) => blank[k] === null);
})();

/** The counters of a record, 0 at first: not stored while 0, and put back by `parseRecord`. */
export const COUNTER_FIELDS = ['submitAttempts', 'ambiguousSubmits', 'polls', 'generation'] as const satisfies readonly (keyof ResultRecord)[];

/**
 * The stored form of a record: without what its place in Redis says (`jobId`, the field; `batchId`, the hash), its
 * `null` fields, its counters at 0 and its empty `resultUrls` and `meta`, all of which `parseRecord` puts back. An
 * image in flight has about 17 fields with no value yet; leaving them out halves the record's Redis memory (README
 * "Redis memory per image"). The record scripts store what they change the same way.
 */
export function storedRecord(record: ResultRecord): Partial<ResultRecord> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(record)) {
    if (v === null || v === undefined || k === 'jobId' || k === 'batchId') continue;
    if (v === 0 && (COUNTER_FIELDS as readonly string[]).includes(k)) continue;
    if (Array.isArray(v) ? v.length === 0 : typeof v === 'object' && Object.keys(v as object).length === 0) continue;
    out[k] = v;
  }
  return out;
}

/**
 * Reads a stored record (its JSON, the hash field it is stored under and its batch): puts back what its place says
 * and the fields stored without a value (`null`, counters at 0, empty `resultUrls` and `meta`), and
 * repairs what Redis' Lua JSON cannot keep (an empty array comes back as `{}`). Optional fields (`download`,
 * `lastTaskId`...) stay absent when absent.
 */
export function parseRecord(json: string, jobId: string, batchId: string): ResultRecord {
  const r: ResultRecord = { jobId, batchId, ...(JSON.parse(json) as Omit<ResultRecord, 'jobId' | 'batchId'>) };
  for (const k of NULL_FIELDS) if (r[k] === undefined) (r as unknown as Record<string, unknown>)[k] = null;
  for (const k of COUNTER_FIELDS) r[k] ??= 0;
  if (!Array.isArray(r.resultUrls)) r.resultUrls = [];
  // Older records have no meta; Lua's cjson writes an empty table as `{}`, but guard against `[]` too.
  if (typeof r.meta !== 'object' || r.meta === null || Array.isArray(r.meta)) r.meta = {};
  r.outputUrl ??= r.outputPath === null || r.outputPath === undefined ? null : pathToFileURL(r.outputPath).href;
  return r;
}

export type StateCounts = Record<RecordState, number>;

export interface BatchSummary {
  batchId: string;
  total: number;
  counts: StateCounts;
  creditsConsumed: number;
  /** When the first image was enqueued. */
  createdAt: number | null;
  /** When the first image was submitted. */
  startedAt: number | null;
  updatedAt: number | null;
  /** When the last image reached a terminal state (null while any is active). */
  finishedAt: number | null;
  ambiguousSubmits: number;
  /** Images finished per minute since startedAt. */
  throughputPerMinute: number | null;
  /** Estimated time to finish at the current throughput. */
  etaSeconds: number | null;
  // Lifecycle fields (optional so summaries built elsewhere stay valid; `summaryFrom` always fills them).
  /** Downloads of succeeded images still to do (with OUTPUT_URL / OUTPUT_DIR); the batch finishes when this is 0 too. */
  downloadsPending?: number;
  /**
   * Succeeded images whose output is missing: their download failed for good (`download: 'failed'`, the result's
   * own bytes: expired URL, verification). `upscale retry --batch ID --downloads` fetches them again.
   */
  downloadsFailed?: number;
  /** When the finalizer wrote the batch's results and marked it finished (null while open or re-opened). */
  finalizedAt?: number | null;
  /** How often the batch was re-opened (a retry or a late image after it finished); 0 at first. */
  epoch?: number;
  /**
   * Where the finalizer put results.jsonl and summary.json: a local folder (file storage) or its URL
   * (`s3://bucket/prefix/<batchId>`); null without OUTPUT_URL / OUTPUT_DIR, or while not finished.
   */
  resultsAt?: string | null;
  /** End of the completion window (`--deadline`), Unix ms, or null. */
  deadlineAt?: number | null;
  /** Images enqueued as the pilot (`--pilot N`), or null; `pilotApprovedAt` once `upscale approve` let the rest go. */
  pilot?: number | null;
  pilotApprovedAt?: number | null;
  /** Its share of the create budget among batches with waiting images (src/queue/fair-share.ts). */
  priority: Priority;
  /** Null while its waiting images are admitted; why they are held otherwise (`paused` by `upscale pause --batch`). */
  gate: BatchGate | null;
}

/** Whether the batch's pilot waits for `upscale approve`: it has one, not approved, and images are still held for it. */
export function pilotAwaitsApproval(s: Pick<BatchSummary, 'pilot' | 'pilotApprovedAt' | 'counts'>): boolean {
  return s.pilot !== null && s.pilot !== undefined && (s.pilotApprovedAt ?? null) === null && (s.counts.held ?? 0) > 0;
}
