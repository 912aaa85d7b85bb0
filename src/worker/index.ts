/**
 * Runs the lanes' BullMQ workers in this process. Each lane's limiter is derived from its API budget and held in
 * Redis, so it is global across every worker process. `close()` drains within a deadline: running jobs finish
 * (parked polls hold no slot), and past the deadline the workers are closed by force; their jobs are taken over
 * by another worker (or this one after a restart) from their checkpoints.
 */
import { Worker, type Job, type Processor } from 'bullmq';
import { Counters } from '../metrics/counters.js';
import { limiterFor, type LimiterOptions } from '../queue/limits.js';
import { queueName, type Lane } from '../queue/names.js';
import { createRedis } from '../queue/connection.js';
import type { Runtime } from '../runtime.js';
import { isTerminal } from '../results/record.js';
import type { LaneContext, PrepareInput } from './context.js';
import { PollSchedule } from './poll-schedule.js';
import { pollProcessor } from './poll-lane.js';
import { downloadProcessor } from './download-lane.js';
import { defaultPrepareInput } from './prepare-input.js';
import { openStorage } from '../storage/index.js';
import { submitProcessor } from './submit-lane.js';

export interface WorkerOptions {
  /** Lanes to run. @defaultValue submit and poll (and download when OUTPUT_URL or OUTPUT_DIR is set) */
  lanes?: readonly Lane[];
  /** Jobs run at once per lane in this process (HTTP calls in flight). @defaultValue 16 */
  concurrency?: number;
  /** Replaces input preparation (pre-flight checks, uploads). */
  prepareInput?: PrepareInput;
  /** Processors that replace or add to the built-in ones (submit, poll, download). */
  extraProcessors?: Partial<Record<Lane, (ctx: LaneContext) => Processor>>;
}

export interface WorkerHandle {
  readonly workers: ReadonlyMap<Lane, Worker>;
  readonly context: LaneContext;
  /** Waits for running jobs up to `timeoutMs`, then closes by force. Resolves true when the drain was clean. */
  close(timeoutMs?: number): Promise<boolean>;
}

export function defaultLanes(rt: Runtime): Lane[] {
  return rt.config.output ? ['submit', 'poll', 'download'] : ['submit', 'poll'];
}

export function limiterOf(rt: Runtime, lane: Lane): LimiterOptions | undefined {
  if (lane === 'submit') return limiterFor(rt.config.createLimit);
  if (lane === 'poll') return limiterFor(rt.config.queryLimit);
  return undefined;
}

export async function startWorkers(rt: Runtime, options: WorkerOptions = {}): Promise<WorkerHandle> {
  const lanes = options.lanes ?? defaultLanes(rt);
  const concurrency = options.concurrency ?? 16;
  const counters = new Counters(rt.redis, rt.store.keys.counters);
  const schedule = new PollSchedule(rt.redis, rt.store.keys, rt.queues.poll, {
    minIntervalMs: rt.config.pollMinIntervalMs,
    maxIntervalMs: rt.config.pollMaxIntervalMs,
    queryLimit: rt.config.queryLimit,
    callbacks: rt.config.publicBaseUrl !== undefined,
  });
  const storage = lanes.includes('download') ? await openStorage(rt.config) : null;
  const context: LaneContext = {
    rt,
    log: rt.log,
    counters,
    schedule,
    prepareInput: options.prepareInput ?? defaultPrepareInput(rt),
    storage,
  };
  const processors: Partial<Record<Lane, Processor>> = {
    submit: submitProcessor(context) as Processor,
    poll: pollProcessor(context) as Processor,
    download: downloadProcessor(context) as Processor,
  };
  for (const [lane, make] of Object.entries(options.extraProcessors ?? {})) {
    if (make) processors[lane as Lane] = make(context);
  }

  // One worker-role connection (retries forever) shared by this process' workers; BullMQ duplicates it for its
  // blocking reads.
  const workerConnection = createRedis(rt.config.redisUrl, 'worker', rt.config.redisClusterNodes);
  const workers = new Map<Lane, Worker>();
  for (const lane of lanes) {
    const processor = processors[lane];
    if (!processor) throw new Error(`no processor for the ${lane} lane in this build`);
    const limiter = limiterOf(rt, lane);
    const worker = new Worker(queueName(lane), processor, {
      connection: workerConnection,
      prefix: rt.config.prefix,
      concurrency,
      ...(limiter ? { limiter } : {}),
      lockDuration: rt.config.jobLockMs,
      stalledInterval: rt.config.jobLockMs,
      // A job whose worker died is taken over, however often: the checkpoints make re-runs safe.
      maxStalledCount: 1000,
      autorun: false,
    });
    worker.on('failed', (job, err) => void recordUnexpectedFailure(context, lane, job, err));
    worker.on('error', (err) => rt.log.error({ lane, err }, 'worker error'));
    workers.set(lane, worker);
  }
  for (const [lane, worker] of workers) {
    void worker.run().catch((err: unknown) => rt.log.error({ lane, err }, 'worker stopped'));
  }
  await Promise.all([...workers.values()].map((w) => w.waitUntilReady()));
  rt.log.info({ lanes, concurrency, prefix: rt.config.prefix, ...(storage ? { output: storage.url } : {}) }, 'workers started');

  return {
    workers,
    context,
    async close(timeoutMs = rt.config.shutdownTimeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      const graceful = Promise.all([...workers.values()].map((w) => w.close())).then(() => true);
      const deadline = new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      });
      const clean = await Promise.race([graceful, deadline]);
      clearTimeout(timer);
      if (!clean) {
        rt.log.warn({ timeoutMs }, 'drain deadline passed; closing workers by force (their jobs resume elsewhere)');
        await Promise.all([...workers.values()].map((w) => w.close(true)));
      }
      await counters.flush().catch(() => undefined);
      storage?.close();
      workerConnection.disconnect();
      return clean;
    },
  };
}

/**
 * A job that failed for good without the lane recording it (unexpected errors exhausted its attempts): record
 * the image failed, so nothing is left in a non-terminal state.
 */
async function recordUnexpectedFailure(ctx: LaneContext, lane: Lane, job: Job | undefined, err: Error): Promise<void> {
  if (!job) return;
  const attempts = job.opts.attempts ?? 1;
  const final = err.name === 'UnrecoverableError' || job.attemptsMade >= attempts;
  if (!final) return;
  const data = job.data as { jobId?: string; batchId?: string };
  if (!data.jobId || !data.batchId) return;
  try {
    const record = await ctx.rt.store.getRecord(data.batchId, data.jobId);
    if (!record || isTerminal(record.state)) return;
    if (lane === 'download') return;
    await ctx.rt.store.transition(data.batchId, data.jobId, {
      state: 'failed',
      failCode: 'internal',
      failMsg: `${lane} job failed after ${job.attemptsMade} attempts: ${err.message}`,
      completedAt: Date.now(),
    });
    ctx.log.error({ lane, jobId: data.jobId, batchId: data.batchId, err }, 'job failed unexpectedly; image recorded failed');
  } catch (e) {
    ctx.log.error({ lane, jobId: data.jobId, err: e }, 'could not record an unexpected failure');
  }
}
