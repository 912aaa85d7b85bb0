/** What every lane's processor needs, built once per worker process. */
import type { Runtime } from '../runtime.js';
import type { Counters } from '../metrics/counters.js';
import type { PollSchedule } from './poll-schedule.js';
import type { SubmitJobData } from '../queue/job-data.js';
import type { Logger } from '../log.js';
import type { Storage } from '../storage/index.js';

/**
 * Turns an image's input into the URL createTask gets, after pre-flight checks: uploads local files, refuses
 * inputs that cannot succeed, stops at a batch's credit budget. `ok: false` means "send nothing": the image is
 * recorded `failed` (or `cancelled` when `state` says so) with the code and message. `update` goes into the job's
 * checkpoint (e.g. the uploaded copy's URL).
 */
export type PrepareInput = (data: SubmitJobData) => Promise<PreparedInput>;

export type PreparedInput =
  | { ok: true; url: string; update?: Partial<SubmitJobData> }
  | { ok: false; state?: 'failed' | 'cancelled'; failCode: string; failMsg: string };

export interface LaneContext {
  readonly rt: Runtime;
  readonly log: Logger;
  readonly counters: Counters;
  readonly schedule: PollSchedule;
  readonly prepareInput: PrepareInput;
  /** Where results are stored (OUTPUT_URL / OUTPUT_DIR); null when neither is set or this process runs no download lane. */
  readonly storage: Storage | null;
}
