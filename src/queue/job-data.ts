/** The data each lane's jobs carry. Kept small (Redis memory per in-flight image) and free of secrets. */
import type { Factor, ModelName } from '../kie/models.js';

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

/** Data of a poll job. */
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
