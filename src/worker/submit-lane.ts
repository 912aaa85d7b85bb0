/**
 * The submit lane: one createTask per image under the account's create budget (the queue's limiter).
 *
 * Never pay twice: the taskId is checkpointed on the job (`job.updateData`) before anything else happens after
 * createTask answers, and a re-run of a job with a taskId never calls createTask again. A `sendingAt` mark is
 * checkpointed just before sending, so a re-run after a crash in between knows that attempt was ambiguous.
 *
 * With callbacks on, an ambiguous attempt (crash or timeout after sending) is not sent again at once: the job is
 * parked for about the model's 97th-percentile completion time. If kie.ai did create the task, its callback arrives
 * meanwhile and re-attaches the taskId to this job (src/server/callback-resolve.ts), whose re-run then follows that
 * task; only when no callback came is createTask sent again (and the record says the image may have been paid twice).
 */
import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import { MODELS } from '../kie/models.js';
import { callbackUrl } from '../queue/callback-token.js';
import { pollJobId, submitJobId } from '../queue/identity.js';
import type { PollJobData, SubmitJobData } from '../queue/job-data.js';
import { outcomeFor, retryDelay } from '../queue/outcome.js';
import type { LaneContext } from './context.js';
import { LaneSignals } from './lane-signals.js';
import { recordOrRecreate } from './records.js';

export interface SubmitResult {
  taskId: string | null;
  skipped?: string;
}

export function submitProcessor(ctx: LaneContext) {
  const { rt, log, counters, schedule, stopper } = ctx;
  const { config, store, queues, kie } = rt;
  const signals = new LaneSignals(ctx, 'submit');

  /**
   * How long an ambiguous attempt waits for a callback: about the 97th percentile of the model's completion times
   * (kie.ai calls back when the task ends), at least POLL_MAX_INTERVAL, at most POLL_DEADLINE.
   */
  async function callbackGraceMs(model: SubmitJobData['model']): Promise<number> {
    const qs = await schedule.quantilesOf(model);
    const p97 = qs?.[3] !== undefined ? qs[3] * 1.1 : config.pollMaxIntervalMs * 4;
    return Math.min(config.pollDeadlineMs, Math.max(config.pollMaxIntervalMs, Math.round(p97)));
  }

  /** UPSCALE_CRASH_AT: dies on the spot, as a power cut would, to prove the checkpoints (tests and chaos only). */
  function crashPoint(point: 'after-create' | 'after-checkpoint'): void {
    if (config.crashAt !== point) return;
    log.warn({ point }, 'UPSCALE_CRASH_AT: killing this worker process now');
    process.kill(process.pid, 'SIGKILL');
  }

  /** Moves an image with a task to `polling` and adds its poll job (idempotent by job id). */
  async function followTask(job: Job<SubmitJobData>, data: SubmitJobData & { taskId: string; submittedAt: number }): Promise<void> {
    await recordOrRecreate(ctx, data, { state: 'polling', taskId: data.taskId, submittedAt: data.submittedAt });
    const poll: PollJobData = {
      jobId: data.jobId,
      batchId: data.batchId,
      model: data.model,
      taskId: data.taskId,
      generation: data.generation,
      submittedAt: data.submittedAt,
      deadlineAt: data.submittedAt + config.pollDeadlineMs,
      polls: 0,
      errors: 0,
      ...(data.autoResubmits ? { autoResubmits: data.autoResubmits } : {}),
    };
    const elapsed = Date.now() - data.submittedAt;
    const delay = await schedule.delayFor(data.model, elapsed, poll.deadlineAt - Date.now());
    await queues.poll.add('poll', poll, { jobId: pollJobId(data.jobId, data.generation), delay });
    log.info({ jobId: data.jobId, batchId: data.batchId, taskId: data.taskId, state: 'polling', firstCheckMs: delay }, 'task created');
  }

  async function fail(data: SubmitJobData, failCode: string, failMsg: string, state: 'failed' | 'cancelled' = 'failed'): Promise<never> {
    await recordOrRecreate(ctx, data, { state, failCode, failMsg, completedAt: Date.now() });
    counters.inc('upscale_images_finished_total', { state, model: data.model });
    log.info({ jobId: data.jobId, batchId: data.batchId, state, failCode, failMsg }, `image ${state} before a task was created`);
    throw new UnrecoverableError(`${failCode}: ${failMsg}`);
  }

  return async function processSubmit(job: Job<SubmitJobData>, token?: string): Promise<SubmitResult> {
    let data = job.data;
    const record = await store.getRecord(data.batchId, data.jobId);
    if (record && (record.generation !== data.generation || ['succeeded', 'failed', 'timed_out', 'cancelled'].includes(record.state))) {
      const skipped = `record is ${record.state} (generation ${record.generation}); job is generation ${data.generation}`;
      log.debug({ jobId: data.jobId, skipped }, 'stale submit job skipped');
      return { taskId: data.taskId ?? null, skipped };
    }

    // Resume from the checkpoint: the task exists, follow it.
    if (data.taskId && data.submittedAt) return followAndReturn(job, { ...data, taskId: data.taskId, submittedAt: data.submittedAt });

    const ambiguous = data.sendingAt !== undefined;
    if (data.sendingAt !== undefined && config.publicBaseUrl && data.callbackWaitFor !== data.sendingAt) {
      const until = data.sendingAt + (await callbackGraceMs(data.model));
      if (Date.now() < until) {
        await job.updateData({ ...data, callbackWaitFor: data.sendingAt });
        log.warn({ jobId: data.jobId, batchId: data.batchId, waitMs: until - Date.now() }, 'previous createTask attempt ended without an answer (crash?); waiting for a callback before sending again');
        await job.moveToDelayed(until, token);
        throw new DelayedError();
      }
    }
    if (ambiguous) {
      log.warn({ jobId: data.jobId, batchId: data.batchId }, 'previous createTask attempt ended without an answer (crash?); kie.ai may hold a task for it');
      counters.inc('upscale_ambiguous_submits_total', { cause: 'crash' });
    }
    const prepared = await ctx.prepareInput(data, stopper.aborted);
    stopper.throwIfAborted();
    // Draining: no createTask is sent any more (one cut at the deadline would be ambiguous); the job goes back.
    stopper.throwIfDraining();
    if (!prepared.ok) return fail(data, prepared.failCode, prepared.failMsg, prepared.state);

    await recordOrRecreate(ctx, data, { state: 'submitting', $inc: { submitAttempts: 1, ambiguousSubmits: ambiguous ? 1 : 0 } });
    data = { ...data, ...prepared.update, sendingAt: Date.now(), attempts: (data.attempts ?? 0) + 1 };
    await job.updateData(data);

    const spec = MODELS[data.model];
    const sid = submitJobId(data.jobId, data.generation);
    let taskId: string;
    try {
      const created = await kie.createTask({
        model: data.model,
        input: spec.buildInput(prepared.url, data.factor),
        ...(config.publicBaseUrl ? { callBackUrl: callbackUrl(config.publicBaseUrl, config.callbackSecret, sid) } : {}),
      }, { signal: stopper.aborted });
      taskId = created.taskId;
    } catch (e) {
      // Aborted at the drain deadline: `sendingAt` stays checkpointed, so the re-run knows this attempt is ambiguous.
      stopper.throwIfAborted();
      return handleError(job, data, e, token);
    }
    // CHECKPOINT: nothing may come between createTask's answer and this.
    crashPoint('after-create');
    const submittedAt = Date.now();
    const { sendingAt: _sent, ...rest } = data;
    const checkpoint = { ...rest, taskId, submittedAt };
    await job.updateData(checkpoint);
    crashPoint('after-checkpoint');
    await signals.answered();
    return followAndReturn(job, checkpoint);
  };

  async function followAndReturn(job: Job<SubmitJobData>, data: SubmitJobData & { taskId: string; submittedAt: number }) {
    await followTask(job, data);
    return { taskId: data.taskId };
  }

  async function handleError(job: Job<SubmitJobData>, data: SubmitJobData, error: unknown, token?: string): Promise<never> {
    const outcome = outcomeFor(error);
    const code = (error as { code?: unknown }).code;
    await signals.answered(error);
    const { sendingAt: _s, ...clean } = data;
    switch (outcome.kind) {
      case 'slow-down':
      case 'pause':
        // Rejected, not processed: nothing ambiguous; the image waits with the lane.
        await job.updateData(clean);
        await store.transition(data.batchId, data.jobId, { state: 'waiting' }, { from: ['submitting'] });
        return outcome.kind === 'pause' ? signals.pause(outcome) : signals.slowDown(outcome.reason);
      case 'retry': {
        const retries = (data.retries ?? 0) + 1;
        if (outcome.ambiguous) {
          counters.inc('upscale_ambiguous_submits_total', { cause: 'no-answer' });
          await store.transition(data.batchId, data.jobId, { $inc: { ambiguousSubmits: 1 } });
        }
        if (retries > config.submitRetries) {
          await job.updateData(clean);
          return fail(data, String(typeof code === 'number' ? code : 'network'), `createTask failed ${retries} times; last: ${outcome.reason}`);
        }
        let delay = retryDelay(retries, config.retryBackoffMs, config.maxBackoffMs);
        // The attempt may have made a task: with callbacks on, give its callback time to re-attach it first.
        if (outcome.ambiguous && config.publicBaseUrl) delay = Math.max(delay, await callbackGraceMs(data.model));
        await job.updateData({ ...clean, retries });
        log.warn({ jobId: data.jobId, batchId: data.batchId, retries, delayMs: delay, reason: outcome.reason }, 'createTask failed; retrying later');
        await job.moveToDelayed(Date.now() + delay, token);
        throw new DelayedError();
      }
      case 'fail':
        await job.updateData(clean);
        return fail(data, outcome.failCode, outcome.failMsg);
    }
  }
}
