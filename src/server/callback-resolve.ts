/**
 * What a verified callback does: it only promotes the parked poll job of its task, so the poll lane checks the
 * task at once with one recordInfo (nothing from the body is recorded: the signature does not cover it).
 * When the taskId was lost (a crash or timeout between createTask and the checkpoint), the callback re-attaches it
 * to the submit job, whose re-run then follows the task instead of creating another (never pay twice).
 */
import type { Job } from 'bullmq';
import { pollJobId, submitJobId } from '../queue/identity.js';
import type { StoredPollJobData, SubmitJobData } from '../queue/job-data.js';
import { runScript } from '../results/scripts.js';
import type { Runtime } from '../runtime.js';

/**
 * - `promoted`: the parked poll job was moved to waiting.
 * - `duplicate`: the task is already being checked or finished (a repeated or late callback).
 * - `stale`: the jobs follow another task (an older generation's callback).
 * - `reattached`: a lost taskId was checkpointed on the submit job.
 * - `orphaned`: the submit job ended without a taskId, yet kie.ai holds a task for it (logged for recovery).
 * - `unknown`: no job for this id (removed by retention, or never existed).
 * - `pending`: the job is running right now; try again shortly (see FollowUps).
 */
export type Resolution =
  'promoted' | 'duplicate' | 'stale' | 'reattached' | 'orphaned' | 'unknown' | 'pending';

export interface CallbackTarget {
  jobId: string;
  generation: number;
}

/**
 * Compare-and-set of a submit job's data, refused while the job runs (lock held or in the active list) or after it
 * finished. KEYS: job hash, its lock, the queue's active list. ARGV: job id, expected data, new data.
 */
const REATTACH = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
if redis.call('EXISTS', KEYS[2]) == 1 or redis.call('LPOS', KEYS[3], ARGV[1]) then return 'active' end
if redis.call('HEXISTS', KEYS[1], 'finishedOn') == 1 then return 'finished' end
if redis.call('HGET', KEYS[1], 'data') ~= ARGV[2] then return 'changed' end
redis.call('HSET', KEYS[1], 'data', ARGV[3])
return 'ok'
`;

async function promoteIfDelayed(job: Job): Promise<'promoted' | 'active' | 'other'> {
  const state = await job.getState();
  if (state === 'active') return 'active';
  if (state !== 'delayed') return 'other';
  try {
    await job.promote();
    return 'promoted';
  } catch {
    // It left the delayed set in between (a worker took it, or another callback promoted it).
    return (await job.getState()) === 'active' ? 'active' : 'other';
  }
}

async function resolvePoll(job: Job<StoredPollJobData>, taskId: string): Promise<Resolution> {
  if (job.data.taskId !== taskId) return 'stale';
  const r = await promoteIfDelayed(job);
  return r === 'promoted' ? 'promoted' : r === 'active' ? 'pending' : 'duplicate';
}

async function resolveSubmit(rt: Runtime, id: string, taskId: string): Promise<Resolution> {
  const queue = rt.queues.submit;
  for (let attempt = 0; attempt < 3; attempt++) {
    const job = (await queue.getJob(id)) as Job<SubmitJobData> | undefined;
    if (!job) return 'unknown';
    if (job.data.taskId !== undefined) {
      if (job.data.taskId !== taskId) return 'stale';
      // The checkpoint is there but the poll job is not (yet): the lane is adding it right now, or it was removed.
      return (await job.isActive()) ? 'pending' : 'duplicate';
    }
    const { sendingAt: _sending, ...rest } = job.data;
    const next: SubmitJobData = { ...rest, taskId, submittedAt: Date.now() };
    const jobKey = queue.toKey(id);
    const result = (await runScript(
      rt.redis,
      REATTACH,
      [jobKey, `${jobKey}:lock`, queue.toKey('active')],
      [id, JSON.stringify(job.data), JSON.stringify(next)],
    )) as string;
    if (result === 'missing') return 'unknown';
    if (result === 'active') return 'pending';
    if (result === 'finished') return 'orphaned';
    if (result === 'changed') continue;
    await promoteIfDelayed(job);
    return 'reattached';
  }
  return 'pending';
}

/**
 * The taskId the jobs of `target` follow: the poll job's, else the submit job's checkpoint; null when none is known
 * yet. A callback whose body cannot be read is matched (and its signature checked) against this.
 */
export async function jobTaskId(rt: Runtime, target: CallbackTarget): Promise<string | null> {
  const poll = (await rt.queues.poll.getJob(pollJobId(target.jobId, target.generation))) as Job<StoredPollJobData> | undefined;
  if (poll?.data.taskId) return poll.data.taskId;
  const submit = (await rt.queues.submit.getJob(submitJobId(target.jobId, target.generation))) as Job<SubmitJobData> | undefined;
  return submit?.data.taskId ?? null;
}

/** Does the Redis work of one verified callback for `taskId` (a few round trips; never calls kie.ai). */
export async function resolveCallback(
  rt: Runtime,
  target: CallbackTarget,
  taskId: string,
): Promise<Resolution> {
  const poll = (await rt.queues.poll.getJob(pollJobId(target.jobId, target.generation))) as
    Job<StoredPollJobData> | undefined;
  if (poll) return resolvePoll(poll, taskId);
  return resolveSubmit(rt, submitJobId(target.jobId, target.generation), taskId);
}
