/** The data each lane's jobs carry. Kept small (Redis memory per in-flight image) and free of secrets. */
import type { Factor, ModelName } from '../kie/models.js';
import { parsePollJobId } from './identity.js';

/** Data of a submit job. `taskId` is the checkpoint that makes a re-run never call createTask again. */
export interface SubmitJobData {
  jobId: string;
  batchId: string;
  /** The input as enqueued: an http(s) URL, or a local path / file:// URL to upload first. */
  input: string;
  model: ModelName;
  factor: Factor | null;
  generation: number;
  /** The input line's extra columns (a CSV's `sku`...), bounded by src/producer/meta.ts; absent when none. */
  meta?: Record<string, string>;
  /** Set (to the time) just before createTask is sent; with no taskId on a re-run, that attempt is ambiguous. */
  sendingAt?: number;
  /** Checkpointed right after createTask answered. */
  taskId?: string;
  submittedAt?: number;
  /** How many createTask calls this job has made (all generations add up in the record). */
  attempts?: number;
  /** Retries used on 500/501/network errors. */
  retries?: number;
  ambiguous?: number;
  /** The `sendingAt` of the ambiguous attempt this job already waited a callback for (once per attempt). */
  callbackWaitFor?: number;
  /** Server-side failures resubmitted automatically so far (bounded by RESUBMIT_FAILED). */
  autoResubmits?: number;
  /** For local files: the uploaded copy and when it was uploaded (re-uploaded when older than its lifetime). */
  uploadedUrl?: string;
  uploadedAt?: number;
}

/** Data of a poll job, as the poll lane works with it (`pollDataOf`). */
export interface PollJobData {
  jobId: string;
  batchId: string;
  model: ModelName;
  taskId: string;
  generation: number;
  submittedAt: number;
  deadlineAt: number;
  polls: number;
  /** Consecutive failed status checks (network, 5xx, bad answers). */
  errors: number;
  autoResubmits?: number;
}

/** Data of a download job. */
export interface DownloadJobData {
  jobId: string;
  batchId: string;
  generation: number;
  resultUrls: string[];
  /** Expected output size, to check the downloaded file, when known. */
  expected?: { width: number; height: number };
}

/**
 * A poll job's data as stored in its BullMQ job, which waits in Redis for as long as the task runs: without what its
 * job id already says (`jobId`, `generation`: `pollJobId`) and without counters at 0. About 70 bytes less per image
 * in flight than the whole `PollJobData`. Jobs stored whole (before this form) read the same.
 */
export type StoredPollJobData = Omit<PollJobData, 'jobId' | 'generation' | 'polls' | 'errors'> &
  Partial<Pick<PollJobData, 'jobId' | 'generation' | 'polls' | 'errors'>>;

export function storedPollData(data: PollJobData): StoredPollJobData {
  const { jobId: _jobId, generation: _generation, polls, errors, ...rest } = data;
  return { ...rest, ...(polls ? { polls } : {}), ...(errors ? { errors } : {}) };
}

/**
 * The whole data of a poll job from its stored form and its BullMQ id. Throws when neither the data nor the id
 * says which image it follows (a job not added by the submit lane).
 */
export function pollDataOf(job: { id?: string | undefined; data: StoredPollJobData }): PollJobData {
  const fromId = job.id === undefined ? null : parsePollJobId(job.id);
  const jobId = job.data.jobId ?? fromId?.jobId;
  const generation = job.data.generation ?? fromId?.generation;
  if (jobId === undefined || generation === undefined) throw new Error(`poll job ${job.id ?? '(no id)'} names no image: its id is not <jobId>[-g<n>]-p`);
  return { ...job.data, jobId, generation, polls: job.data.polls ?? 0, errors: job.data.errors ?? 0 };
}
