/** The lanes' BullMQ queues, with bounded job retention (records live in the results store, not in jobs). */
import { Queue, type JobsOptions, type KeepJobs } from 'bullmq';
import type { Redis } from 'ioredis';
import { LANES, queueName, type Lane } from './names.js';

/**
 * Attempts are spent only by unexpected errors (Redis hiccups, bugs): kie.ai's answers are handled by the lanes
 * with their own bounded retries, and rate limits and parked polls (RateLimitError, DelayedError) spend none.
 */
const UNEXPECTED_ERROR_RETRIES: JobsOptions = { attempts: 8, backoff: { type: 'exponential', delay: 1000 } };

/**
 * Retention of finished BullMQ jobs, applied by the lanes' workers (`WorkerOptions.removeOnComplete` /
 * `removeOnFail`), not stored in every job's options: each job hash would carry the same ~95 bytes while it waits
 * (Redis per in-flight image). The result record of every image is kept by the results store, so these only bound
 * what the dashboard can show. A completed submit job is dead weight once its poll job exists (about 1.3 KB of Redis
 * each: 1,000 kept were 134 bytes per image with 10,000 in flight), so only the last hour, at most 100, are kept.
 */
export const JOB_RETENTION: Record<Lane, { removeOnComplete: KeepJobs; removeOnFail: KeepJobs }> = {
  submit: { removeOnComplete: { age: 3600, count: 100 }, removeOnFail: { age: 7 * 24 * 3600, count: 50_000 } },
  poll: { removeOnComplete: { age: 3600, count: 1_000 }, removeOnFail: { age: 7 * 24 * 3600, count: 50_000 } },
  download: { removeOnComplete: { age: 24 * 3600, count: 10_000 }, removeOnFail: { age: 7 * 24 * 3600, count: 50_000 } },
};

/** What every job of a lane carries in its options (the queues' `defaultJobOptions`). */
export const JOB_OPTIONS: Record<Lane, JobsOptions> = {
  submit: UNEXPECTED_ERROR_RETRIES,
  poll: UNEXPECTED_ERROR_RETRIES,
  download: UNEXPECTED_ERROR_RETRIES,
};

export type Queues = Record<Lane, Queue>;

/**
 * One Queue per lane over a shared connection. `onError` hears connection errors (ioredis reconnects by itself);
 * without a listener BullMQ would print each one.
 */
export function createQueues(connection: Redis, prefix: string, onError: (lane: Lane, err: Error) => void = () => undefined): Queues {
  const entries = LANES.map((lane) => {
    const queue = new Queue(queueName(lane), {
      connection,
      prefix,
      defaultJobOptions: JOB_OPTIONS[lane],
      // Nothing here reads BullMQ's event streams beyond live events; BullMQ's default keeps 10,000 per queue.
      streams: { events: { maxLen: 1000 } },
    });
    queue.on('error', (err) => onError(lane, err));
    return [lane, queue];
  });
  return Object.fromEntries(entries) as Queues;
}

export async function closeQueues(queues: Queues): Promise<void> {
  await Promise.all(Object.values(queues).map((q) => q.close()));
}
