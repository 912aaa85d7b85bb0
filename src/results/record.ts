/** The result record of one image (the JSONL export line) and the summary of a batch. */
import { pathToFileURL } from 'node:url';
import type { Factor, ModelName } from '../kie/models.js';

export const STATES = ['waiting', 'submitting', 'polling', 'succeeded', 'failed', 'timed_out', 'cancelled'] as const;
export type RecordState = (typeof STATES)[number];
export const TERMINAL_STATES: readonly RecordState[] = ['succeeded', 'failed', 'timed_out', 'cancelled'];
export const ACTIVE_STATES: readonly RecordState[] = ['waiting', 'submitting', 'polling'];

export function isTerminal(state: RecordState): boolean {
  return TERMINAL_STATES.includes(state);
}

export interface ResultRecord {
  jobId: string;
  batchId: string;
  /** The input as enqueued (URL or local path). */
  input: string;
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
  failCode: string | null;
  failMsg: string | null;
  creditsConsumed: number | null;
  costTimeMs: number | null;
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
  'outputUrl',
];

export function newRecord(
  fields: Pick<ResultRecord, 'jobId' | 'batchId' | 'input' | 'model' | 'factor'> & {
    line?: number | null;
    meta?: Record<string, string> | undefined;
  },
  now: number,
): ResultRecord {
  return {
    jobId: fields.jobId,
    batchId: fields.batchId,
    input: fields.input,
    model: fields.model,
    factor: fields.factor,
    state: 'waiting',
    taskId: null,
    resultUrls: [],
    outputPath: null,
    outputUrl: null,
    sha256: null,
    failCode: null,
    failMsg: null,
    creditsConsumed: null,
    costTimeMs: null,
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

/** Reads a stored record, repairing what Redis' Lua JSON cannot keep (an empty array comes back as `{}`). */
export function parseRecord(json: string): ResultRecord {
  const r = JSON.parse(json) as ResultRecord;
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
}
