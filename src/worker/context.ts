/** What every lane's processor needs, built once per worker process. */
import type { Runtime } from '../runtime.js';
import type { Counters } from '../metrics/counters.js';
import type { PollSchedule } from './poll-schedule.js';
import type { SubmitJobData } from '../queue/job-data.js';
import type { Logger } from '../log.js';
import type { FairShare } from '../queue/fair-share.js';
import type { Admission } from './admission.js';
import type { Stopper } from './shutdown.js';
import type { Storage } from '../storage/index.js';

/**
 * Turns an image's input into the URL createTask gets, after pre-flight checks: uploads local files, refuses
 * inputs that cannot succeed, stops at a batch's credit budget. `ok: false` means "send nothing": the image is
 * recorded `failed` (or `cancelled` / `expired` when `state` says so) with the code and message. `update` goes into the job's
 * checkpoint (e.g. the uploaded copy's URL). `signal` aborts its fetches and uploads (the worker's drain deadline).
 */
export type PrepareInput = (data: SubmitJobData, signal?: AbortSignal) => Promise<PreparedInput>;

export type PreparedInput =
  | { ok: true; url: string; update?: Partial<SubmitJobData> }
  | { ok: false; state?: 'failed' | 'cancelled' | 'expired'; failCode: string; failMsg: string };

export interface LaneContext {
  readonly rt: Runtime;
  readonly log: Logger;
  readonly counters: Counters;
  readonly schedule: PollSchedule;
  readonly prepareInput: PrepareInput;
  /** The batch scheduler (held jobs, batch gates). */
  readonly fair: FairShare;
  /** This process' admission of held submit jobs (its timer runs only where the submit lane runs). */
  readonly admission: Admission;
  /** The process' stop: `draining` (start nothing new) and `aborted` (abort what runs). See shutdown.ts. */
  readonly stopper: Stopper;
  /** Where results are stored (OUTPUT_URL / OUTPUT_DIR); null when neither is set (or this process needs none). */
  readonly storage: Storage | null;
}
