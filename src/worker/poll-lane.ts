/**
 * The poll lane: one recordInfo per job start, under the key's query budget (the queue's limiter). Between checks
 * the job is parked with `moveToDelayed` + `DelayedError`, so a waiting task holds no worker slot. A verified
 * callback promotes the parked job so the check happens at once. What is recorded always comes from recordInfo.
 */
import { DelayedError, type Job } from 'bullmq';
import { formatDuration } from '../config/units.js';
import type { TaskInfo } from '../kie/types.js';
import { downloadJobId, submitJobId } from '../queue/identity.js';
import { pollDataOf, storedPollData, type DownloadJobData, type PollJobData, type StoredPollJobData, type SubmitJobData } from '../queue/job-data.js';
import { pollErrorCode, pollOutcomeFor } from '../queue/poll-outcome.js';
import { DURATION_BUCKETS_S, POLL_BUCKETS } from '../metrics/counters.js';
import type { LaneContext } from './context.js';
import { LaneSignals } from './lane-signals.js';

/** Consecutive failed status checks after which the image is recorded failed. */
export const MAX_POLL_ERRORS = 10;

export type PollResult = { state: string };

export function pollProcessor(ctx: LaneContext) {
  const { rt, log, counters, schedule, stopper } = ctx;
  const { config, store, queues, kie } = rt;
  const signals = new LaneSignals(ctx, 'poll');

  async function park(job: Job<StoredPollJobData>, data: PollJobData, delayMs: number, token?: string): Promise<never> {
    await job.updateData(storedPollData(data));
    await job.moveToDelayed(Date.now() + delayMs, token);
    throw new DelayedError();
  }

  async function finish(data: PollJobData, state: 'succeeded' | 'failed' | 'timed_out', patch: Parameters<typeof store.transition>[2]) {
    const result = await store.transition(
      data.batchId,
      data.jobId,
      { ...patch, state, completedAt: Date.now(), $inc: { polls: data.polls } },
      { from: ['polling', 'submitting', 'waiting'] },
    );
    counters.inc('upscale_images_finished_total', { state, model: data.model });
    counters.observe('upscale_polls_per_task', data.polls, POLL_BUCKETS, { model: data.model });
    log.info(
      { jobId: data.jobId, batchId: data.batchId, taskId: data.taskId, state, polls: data.polls, failCode: patch.failCode, recorded: result.status },
      `image ${state}`,
    );
    return { state };
  }

  async function onSuccess(data: PollJobData, info: TaskInfo): Promise<PollResult> {
    if (info.resultProblem) return finish(data, 'failed', { failCode: 'BAD_RESULT', failMsg: `task succeeded but ${info.resultProblem}`, creditsConsumed: info.creditsConsumed });
    // kie's own create → complete time (ms); its `costTime` is whole seconds live, so it is only kept as kieCostTime.
    const took = info.costTimeMs ?? Date.now() - data.submittedAt;
    counters.observe('upscale_task_duration_seconds', took / 1000, DURATION_BUCKETS_S, { model: data.model });
    if (info.creditsConsumed) counters.inc('upscale_credits_consumed_total', { model: data.model }, info.creditsConsumed);
    // The sample goes out with the others of this second. With OUTPUT_URL / OUTPUT_DIR the download is pending in
    // the record's write, so the batch cannot look finished in between.
    schedule.recordDuration(data.model, took);
    const result = await finish(data, 'succeeded', {
      resultUrls: info.resultUrls,
      creditsConsumed: info.creditsConsumed,
      costTimeMs: info.costTimeMs,
      ...(config.output ? { download: 'pending' as const } : {}),
      kieCostTime: info.kieCostTime,
      kieState: info.rawState,
    });
    if (config.output) {
      const download: DownloadJobData = { jobId: data.jobId, batchId: data.batchId, generation: data.generation, resultUrls: info.resultUrls };
      await queues.download.add('download', download, { jobId: downloadJobId(data.jobId, data.generation) });
    }
    return result;
  }

  async function onFail(data: PollJobData, info: TaskInfo): Promise<PollResult> {
    const serverSide = /^5\d\d$/.test(info.failCode ?? '');
    const resubmits = data.autoResubmits ?? 0;
    if (serverSide && resubmits < config.resubmitFailed) {
      const record = await store.getRecord(data.batchId, data.jobId);
      if (record) {
        const generation = data.generation + 1;
        const moved = await store.transition(
          data.batchId,
          data.jobId,
          {
            state: 'waiting',
            generation,
            taskId: null,
            submittedAt: null,
            // The failed task stays visible (a cancel before the new task keeps it); the next one replaces it.
            lastTaskId: data.taskId,
            lastFailCode: info.failCode ?? 'fail',
            lastFailMsg: info.failMsg ?? 'kie.ai reported the task failed',
            $inc: { polls: data.polls },
          },
          { from: ['polling'] },
        );
        // A re-run after a crash between the two steps finds the record already moved: finish the step.
        const alreadyMoved = moved.status === 'refused' && moved.record.generation === generation && moved.previous === 'waiting';
        if (moved.status === 'ok' || alreadyMoved) {
          const next: SubmitJobData = {
            jobId: data.jobId,
            batchId: data.batchId,
            input: record.input,
            model: record.model,
            factor: record.factor,
            generation,
            autoResubmits: resubmits + 1,
            ...(Object.keys(record.meta).length > 0 ? { meta: record.meta } : {}),
          };
          // Held like every submit job: it takes its batch's turn, and waits while the batch's gate is closed; first
          // in its batch (it came back), not behind the images enqueued since.
          await ctx.fair.holdJobs(data.batchId, [{ name: 'submit', data: next, opts: { jobId: submitJobId(data.jobId, generation) } }], 'first');
          ctx.admission.kick();
          counters.inc('upscale_resubmits_total', { model: data.model });
          log.info({ jobId: data.jobId, batchId: data.batchId, taskId: data.taskId, failCode: info.failCode, generation }, 'task failed server-side; submitting again');
          return { state: 'resubmitted' };
        }
      }
    }
    return finish(data, 'failed', {
      failCode: info.failCode ?? 'fail',
      failMsg: info.failMsg ?? 'kie.ai reported the task failed',
      creditsConsumed: info.creditsConsumed ?? 0,
      costTimeMs: info.costTimeMs,
      kieCostTime: info.kieCostTime,
      kieState: info.rawState,
    });
  }

  async function onError(job: Job<StoredPollJobData>, data: PollJobData, error: unknown, token?: string): Promise<PollResult> {
    const outcome = pollOutcomeFor(error);
    await signals.answered(error);
    if (outcome.kind === 'slow-down') return signals.slowDown(outcome);
    if (outcome.kind === 'pause') {
      // 401 pauses this lane too (RateLimitError); 402/433 pause submission only, and this check waits.
      await signals.pause(outcome);
      return park(job, data, Math.min(config.pollMaxIntervalMs, Math.max(1, data.deadlineAt - Date.now())), token);
    }
    if (outcome.kind === 'task-failed') {
      // kie's verdict on the task itself (501 without a task record): recorded with kie's code and message.
      return finish(data, 'failed', { failCode: outcome.failCode, failMsg: outcome.failMsg });
    }
    const errors = data.errors + 1;
    const reason = outcome.kind === 'fail' ? `${outcome.failCode} ${outcome.failMsg}` : outcome.reason;
    // kie.ai may not know a brand-new task for a moment (TASK_VISIBLE_WITHIN after createTask, however often it was
    // checked meanwhile); an unknown task that stays unknown longer is a failure.
    const given = outcome.kind === 'not-visible' ? errors >= 3 && Date.now() - data.submittedAt >= config.taskVisibleWithinMs : errors >= MAX_POLL_ERRORS;
    if (given || Date.now() >= data.deadlineAt) {
      return finish(data, 'failed', { failCode: pollErrorCode(error), failMsg: `status check failed ${errors} times in a row; last: ${reason}` });
    }
    log.warn({ jobId: data.jobId, taskId: data.taskId, errors, reason }, 'status check failed; checking again later');
    const delay = Math.min(config.pollMaxIntervalMs, config.pollMinIntervalMs * 2 ** (errors - 1));
    return park(job, { ...data, errors }, Math.min(delay, Math.max(1, data.deadlineAt - Date.now())), token);
  }

  return async function processPoll(job: Job<StoredPollJobData>, token?: string): Promise<PollResult> {
    const stored = pollDataOf(job);
    const data: PollJobData = { ...stored, polls: stored.polls + 1 };
    let info: TaskInfo;
    try {
      info = await schedule.check(() => kie.getTask(data.taskId, { signal: stopper.aborted }));
    } catch (e) {
      stopper.throwIfAborted(); // aborted at the drain deadline: the job is given back, the call not judged
      return onError(job, data, e, token);
    }
    await signals.answered();
    data.errors = 0;
    if (info.state === 'success') return onSuccess(data, info);
    if (info.state === 'fail') return onFail(data, info);
    const now = Date.now();
    const stateText = info.rawState === null ? 'without a state' : JSON.stringify(info.rawState);
    if (info.state === 'unknown') {
      // Not a word this client knows (or none at all, or data: null): still running until POLL_DEADLINE.
      log.info({ jobId: data.jobId, taskId: data.taskId, rawState: info.rawState }, `task state ${stateText} not recognised; treated as still running`);
    }
    if (now >= data.deadlineAt) {
      return finish(data, 'timed_out', {
        failCode: 'timed_out',
        failMsg: `task still ${stateText} ${formatDuration(now - data.submittedAt)} after submission (POLL_DEADLINE ${formatDuration(config.pollDeadlineMs)})`,
        kieState: info.rawState,
      });
    }
    const delay = await schedule.delayFor(data.model, now - data.submittedAt, data.deadlineAt - now);
    return park(job, data, delay, token);
  };
}
