/**
 * The floor of scenario 2: a bare BullMQ pipeline of the same shape as ours, doing no work. Two queues, one hop: a
 * submit-queue worker that adds a poll-queue job, a poll-queue worker that completes it. Same job options
 * (retention) and concurrency as our lanes; optionally the same limiter.
 *
 * `tsx bench/baselines/bare-bullmq.ts <job.json>`; job.json: `{ redisUrl, prefix, count, concurrency, limiter? }`.
 * The submit jobs are added beforehand by the benchmark. Prints `ready` once both workers run, then one JSON line
 * `{ firstStartAt, lastDoneAt, done }` when `count` poll jobs have completed, and exits.
 */
import { readFileSync } from 'node:fs';
import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { JOB_OPTIONS, JOB_RETENTION } from '../../src/queue/queues.js';

interface BareJob {
  redisUrl: string;
  prefix: string;
  count: number;
  concurrency: number;
  limiter?: { max: number; duration: number };
}

const job = JSON.parse(readFileSync(process.argv[2] as string, 'utf8')) as BareJob;
const connection = new Redis(job.redisUrl, { maxRetriesPerRequest: null, enableReadyCheck: false });
const client = new Redis(job.redisUrl, { maxRetriesPerRequest: 3 });
const pollQueue = new Queue('poll', { connection: client, prefix: job.prefix, defaultJobOptions: JOB_OPTIONS.poll });
const common = { connection, prefix: job.prefix, concurrency: job.concurrency, autorun: false, ...(job.limiter ? { limiter: job.limiter } : {}) };
const retention = (lane: 'submit' | 'poll') => ({ ...common, ...JOB_RETENTION[lane] });

let firstStartAt = 0;
let done = 0;
const submit = new Worker(
  'submit',
  async (j: Job<{ jobId: string }>) => {
    firstStartAt ||= Date.now();
    await pollQueue.add('poll', { ...j.data, taskId: j.data.jobId }, { jobId: `${j.data.jobId}-p` });
    return { taskId: j.data.jobId };
  },
  retention('submit'),
);
const poll = new Worker('poll', () => Promise.resolve({ state: 'succeeded' }), retention('poll'));
const finished = new Promise<number>((resolve) => {
  poll.on('completed', () => {
    done++;
    if (done === job.count) resolve(Date.now());
  });
});
void submit.run();
void poll.run();
await Promise.all([submit.waitUntilReady(), poll.waitUntilReady()]);
process.stdout.write('ready\n');
const lastDoneAt = await finished;
process.stdout.write(JSON.stringify({ firstStartAt, lastDoneAt, done }) + '\n');
await Promise.all([submit.close(), poll.close()]);
await pollQueue.close();
connection.disconnect();
client.disconnect();
