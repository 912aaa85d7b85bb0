/**
 * Runs the lanes' BullMQ workers in this process. Each lane's limiter is derived from its API budget and held in
 * Redis, so it is global across every worker process.
 *
 * `close(timeoutMs)` keeps this promise: from the call on no new job of any lane starts (and no queued download or
 * unsent createTask inside a running one); running jobs may finish until `timeoutMs`; then every HTTP call and
 * download still in flight is aborted, its temp file removed, and its job given back to `waiting` (no attempt spent)
 * to resume from its checkpoints elsewhere. It resolves at most {@link CLOSE_GRACE_MS} after `timeoutMs` whatever
 * Redis or the network do (a job whose give-back could not be written is taken over when its lock expires).
 */
import { Worker, type Job, type Processor } from 'bullmq';
import { Counters } from '../metrics/counters.js';
import { limiterFor, type LimiterOptions } from '../queue/limits.js';
import { queueName, type Lane } from '../queue/names.js';
import { JOB_RETENTION } from '../queue/queues.js';
import { createRedis } from '../queue/connection.js';
import type { Runtime } from '../runtime.js';
import { isTerminal, type BatchSummary } from '../results/record.js';
import { refreshBalance, watchRunway } from './runway.js';
import { BatchWatch, type WatchOptions } from '../batch/watch.js';
import { Deliverer, type DelivererOptions } from '../notify/index.js';
import type { LaneContext, PrepareInput } from './context.js';
import { PollBudget, shareOf } from './poll-budget.js';
import { PollSchedule } from './poll-schedule.js';
import { pollProcessor } from './poll-lane.js';
import { downloadProcessor } from './download-lane.js';
import { getPauseReason } from '../queue/pause-reason.js';
import { LaneProber, liftPause, pauseDownloadsForStore } from './lane-probe.js';
import { defaultPrepareInput } from './prepare-input.js';
import { removeStaleParts } from './part-files.js';
import { Stopper, stoppable } from './shutdown.js';
import { isStorageAuthError, isStoreFault, openStorage, probeStorage } from '../storage/index.js';
import { submitProcessor } from './submit-lane.js';
import { fairShareOf, lookaheadFor } from '../queue/fair-share.js';
import { Admission } from './admission.js';
import { downloadTimeoutMs } from './download-lane.js';
import { CLOSE_GRACE_MS } from './close-grace.js';

export { CLOSE_GRACE_MS };

export interface WorkerOptions {
  /** Lanes to run. @defaultValue submit and poll (and download when OUTPUT_URL or OUTPUT_DIR is set) */
  lanes?: readonly Lane[];
  /** Jobs run at once per lane in this process (HTTP calls in flight). @defaultValue 16 */
  concurrency?: number;
  /** Replaces input preparation (pre-flight checks, uploads). */
  prepareInput?: PrepareInput;
  /** Processors that replace or add to the built-in ones (submit, poll, download). */
  extraProcessors?: Partial<Record<Lane, (ctx: LaneContext) => Processor>>;
  /** The batch watch beside the lanes (finalizer, deadlines, pilots, stall and pause notices); false: none. */
  watch?: WatchOptions | false;
  /** The notification deliverer beside the lanes; false: none. */
  deliver?: DelivererOptions | false;
}

export interface WorkerHandle {
  readonly workers: ReadonlyMap<Lane, Worker>;
  readonly context: LaneContext;
  readonly watch: BatchWatch | null;
  /**
   * Drains: starts nothing new, lets running jobs finish up to `timeoutMs`, then aborts them (given back, temp files
   * removed). Resolves within `timeoutMs` + CLOSE_GRACE_MS; true when every job finished before the deadline.
   */
  close(timeoutMs?: number): Promise<boolean>;
}

export function defaultLanes(rt: Runtime): Lane[] {
  return rt.config.output ? ['submit', 'poll', 'download'] : ['submit', 'poll'];
}

/**
 * BullMQ's limiter of a lane: the budget as fixed windows (createTask's whole budget; recordInfo's polling share).
 * It only keeps workers from taking more jobs than can be sent; the exact sliding windows are the lanes' gates
 * (src/worker/sliding-gate.ts), which a job passes right before its call, so a fixed window's boundary burst waits
 * there instead of reaching kie.ai.
 */
export function limiterOf(rt: Runtime, lane: Lane): LimiterOptions | undefined {
  if (lane === 'submit') return limiterFor(rt.config.createLimit);
  if (lane === 'poll') return limiterFor(shareOf(rt.config.queryLimit, rt.config.pollBudgetShare));
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
    budget: new PollBudget(
      rt.redis,
      rt.store.keys.pollBudget,
      rt.store.keys.queryGate,
      rt.queues.poll,
      shareOf(rt.config.queryLimit, rt.config.pollBudgetShare),
      rt.config.requestTimeoutMs,
    ),
  });
  const fair = fairShareOf(rt);
  const admission = new Admission(fair, lookaheadFor(rt.config.createLimit), rt.log);
  const stopper = new Stopper();
  // The output storage (OUTPUT_URL / OUTPUT_DIR) of the download lane and the finalizer's files; opening makes no request.
  const storage = lanes.includes('download') || options.watch !== false ? await openStorage(rt.config) : null;
  const context: LaneContext = {
    rt,
    log: rt.log,
    counters,
    schedule,
    prepareInput: options.prepareInput ?? defaultPrepareInput(rt),
    fair,
    admission,
    stopper,
    storage,
  };
  if (lanes.includes('download') && storage) {
    // On disk the whole output folder (staging, batch and OUTPUT_NAME folders); for S3 the local staging folder.
    const root = rt.config.outputDir ?? (await storage.stagingDir());
    await removeStaleParts(root, downloadTimeoutMs(rt.config.requestTimeoutMs), rt.log);
    // Check the store now (one probe write), not at the first result: a bad key or a missing bucket pauses the
    // download lane with the reason; the worker still starts and the probe resumes the lane once the store works.
    await probeStorage(storage).then(
      async () => {
        rt.log.info({ output: storage.url }, 'output store takes writes');
        // A store pause left by an earlier run (not a manual one) is over: this write worked.
        const left = await getPauseReason(rt.redis, rt.store.keys, 'download');
        if (left?.code === 'storage') await liftPause(context, 'download', `the output store ${storage.url} takes writes again (checked at worker start)`);
      },
      async (e: unknown) => {
        if (!isStoreFault(e)) {
          rt.log.warn({ output: storage.url, err: e }, 'output store probe at start failed (downloads go on; each result is checked when stored)');
          return;
        }
        const reason = await pauseDownloadsForStore(context, e, isStorageAuthError(e));
        rt.log.error({ output: storage.url, at: 'worker start' }, `downloads paused: ${reason.message}`);
      },
    );
  }
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
    const worker = new Worker(queueName(lane), stoppable(processor, stopper), {
      connection: workerConnection,
      prefix: rt.config.prefix,
      concurrency,
      ...(limiter ? { limiter } : {}),
      ...JOB_RETENTION[lane],
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
  // The credit runway knows the balance before this process sends anything (no read if another did recently).
  if (lanes.includes('submit') && options.watch !== false) await refreshBalance(rt).catch(() => null);
  for (const [lane, worker] of workers) {
    void worker.run().catch((err: unknown) => rt.log.error({ lane, err }, 'worker stopped'));
  }
  await Promise.all([...workers.values()].map((w) => w.waitUntilReady()));
  // Beside the lanes, never in them: finishing batches and sending notifications hold up no image.
  const watchOptions =
    options.watch === false
      ? null
      : {
          ...options.watch,
          finalizer: { storage, ...options.watch?.finalizer },
          extra: [...(options.watch?.extra ?? []), (open: BatchSummary[], now: number) => watchRunway(rt, open, now)],
        };
  const watch = watchOptions === null ? null : new BatchWatch(rt, rt.log, watchOptions);
  const deliverer = options.deliver === false ? null : new Deliverer(rt, options.deliver ?? {});
  watch?.start();
  deliverer?.start();
  if (deliverer && rt.config.notifyUrls.length > 0 && !rt.config.notifySecret) {
    rt.log.warn('NOTIFY_URL is set without NOTIFY_SECRET: notifications are sent unsigned');
  }
  // Paused lanes probe on their own (401/402/433/breaker; the store for downloads); every process running the lane takes part.
  const prober = new LaneProber(context, lanes.filter((l) => l === 'submit' || l === 'poll' || (l === 'download' && storage !== null)));
  prober.start();
  if (workers.has('submit')) admission.start();
  rt.log.info({ lanes, concurrency, prefix: rt.config.prefix, ...(storage ? { output: storage.url } : {}) }, 'workers started');

  let closing: Promise<boolean> | undefined;
  async function drain(timeoutMs: number): Promise<boolean> {
    stopper.drain();
    admission.stop();
    // The timers beside the lanes (batch watch, notification deliverer, lane prober) stop within the same deadline.
    const sideStopped = within(Promise.all([watch?.stop(), deliverer?.stop(), prober.stop()]).then(() => true), timeoutMs);
    // BullMQ's close stops fetching at once and resolves when the running jobs have ended. Called once: a second
    // close(true) would only return this same promise.
    const closed = Promise.all([...workers.values()].map((w) => w.close())).then(
      () => true,
      (err: unknown) => {
        rt.log.warn({ err }, 'error while closing the workers');
        return true;
      },
    );
    const clean = await within(closed, timeoutMs);
    if (!clean) {
      rt.log.warn({ timeoutMs }, 'drain deadline passed: aborting the running calls and downloads; their jobs go back to waiting');
      stopper.abort();
      for (const w of workers.values()) w.cancelAllJobs('the drain deadline passed');
      if (!(await within(closed, CLOSE_GRACE_MS * 0.75))) rt.log.warn('some jobs could not be given back in time; they are taken over when their locks expire');
    }
    await sideStopped;
    await within(Promise.all([counters.flush().catch(() => undefined), schedule.flush().catch(() => undefined)]), CLOSE_GRACE_MS * 0.25);
    storage?.close();
    workerConnection.disconnect();
    return clean;
  }

  return {
    workers,
    context,
    watch,
    close(timeoutMs = rt.config.shutdownTimeoutMs) {
      closing ??= drain(timeoutMs);
      return closing;
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
    if (lane === 'download') {
      // The download broke unexpectedly for good: it is no longer pending (the batch can finish); say why.
      if (record?.download === 'pending') {
        await ctx.rt.store.transition(data.batchId, data.jobId, { download: 'failed', failMsg: `task succeeded but the download failed: ${err.message}` }, { from: ['succeeded'] });
      }
      return;
    }
    if (!record || isTerminal(record.state)) return;
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

/** Resolves true when `promise` settles within `ms`, false otherwise (it is left running). */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
