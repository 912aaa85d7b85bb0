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
 *
 * A run that lost its lock (a starved process; BullMQ's stalled check handed the job to another run) never sends:
 * the `sendingAt` mark is written only under the lock (src/worker/send-claim.ts), and a run that finds another
 * run's mark waits until that attempt's answer must be in before treating it as ambiguous.
 * Jobs arrive here admitted by the batch scheduler (src/queue/fair-share.ts); a job whose batch's gate closed after
 * its admission is held again, unless it already has a task.
 *
 * A pause reaches jobs already running: right before sending (after the pre-flight and the send gate, which can take
 * seconds) the job looks again at the submit lane's pause (probe-gate.ts `mayPassPause`) and its batch's gate, in the
 * send claim's script (send-claim.ts), and goes back unsent when either closed meanwhile.
 */
import { DelayedError, UnrecoverableError, Worker, type Job } from 'bullmq';
import { isKieError } from '../kie/errors.js';
import { MODELS } from '../kie/models.js';
import { callbackUrl } from '../queue/callback-token.js';
import { pollJobId, submitJobId } from '../queue/identity.js';
import { storedPollData, type PollJobData, type SubmitJobData } from '../queue/job-data.js';
import { outcomeFor, retryDelay } from '../queue/outcome.js';
import { getPauseReason } from '../queue/pause-reason.js';
import { isTerminal } from '../results/record.js';
import { breakerSignature, SubmitBreaker } from '../queue/submit-breaker.js';
import { pauseForBreaker, sendBackImages } from './breaker-trip.js';
import type { LaneContext } from './context.js';
import { applyEarlyCallback, rememberedTaskId } from './early-callback.js';
import { LaneSignals } from './lane-signals.js';
import { liftPause } from './lane-probe.js';
import { enterProbeGate, mayPassPause, releaseProbe, type GateVerdict } from './probe-gate.js';
import { recordOrRecreate } from './records.js';
import { answeredForRunway, releaseRunway } from './runway.js';
import { claimSend, inFlightUntil } from './send-claim.js';
import { createTaskGate } from './create-gate.js';
import { forgetInputFacts } from './prepare-input.js';

export interface SubmitResult {
  taskId: string | null;
  skipped?: string;
}

export function submitProcessor(ctx: LaneContext) {
  const { rt, log, counters, schedule, stopper } = ctx;
  const { config, store, queues, kie } = rt;
  const signals = new LaneSignals(ctx, 'submit');
  const createGate = createTaskGate(rt);
  const breaker = new SubmitBreaker(rt.redis, rt.store.keys, config.submitBreaker, Math.max(config.pollDeadlineMs, 3_600_000));

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
    await queues.poll.add('poll', storedPollData(poll), { jobId: pollJobId(data.jobId, data.generation), delay });
    log.info({ jobId: data.jobId, batchId: data.batchId, taskId: data.taskId, state: 'polling', firstCheckMs: delay }, 'task created');
    // After the add (never before): a callback remembered meanwhile promotes the job now.
    await applyEarlyCallback(ctx, { ...data, taskId: data.taskId });
  }

  async function fail(data: SubmitJobData, failCode: string, failMsg: string, state: 'failed' | 'cancelled' | 'expired' = 'failed'): Promise<never> {
    await recordOrRecreate(ctx, data, { state, failCode, failMsg, completedAt: Date.now() });
    counters.inc('upscale_images_finished_total', { state, model: data.model });
    log.info({ jobId: data.jobId, batchId: data.batchId, state, failCode, failMsg }, `image ${state} before a task was created`);
    throw new UnrecoverableError(`${failCode}: ${failMsg}`);
  }

  return async function processSubmit(job: Job<SubmitJobData>, token?: string): Promise<SubmitResult> {
    // This start frees a place in the wait list: admit the next held job (fair order), without waiting for it.
    ctx.admission.kick();
    let data = job.data;
    // The reads go out together: one round trip (the lane's pause reason is for the probe gate below).
    const [record, batchGate, lanePause] = await Promise.all([
      store.getRecord(data.batchId, data.jobId),
      ctx.fair.gateOf(data.batchId),
      rt.redis.get(rt.store.keys.pauseReason('submit')),
    ]);
    if (record && (record.generation !== data.generation || isTerminal(record.state) || record.state === 'held')) {
      const skipped = `record is ${record.state} (generation ${record.generation}); job is generation ${data.generation}`;
      log.debug({ jobId: data.jobId, skipped }, 'stale submit job skipped');
      return { taskId: data.taskId ?? null, skipped };
    }

    // Resume from the checkpoint: the task exists, follow it.
    if (data.taskId && data.submittedAt) return followAndReturn(job, { ...data, taskId: data.taskId, submittedAt: data.submittedAt });
    // An attempt was sent and never checkpointed (its process died), and kie.ai's callback for it came while the
    // dead run still held the job (it could not be re-attached then): the task exists, follow it, pay nothing again.
    if (data.sendingAt !== undefined) {
      const taskId = await rememberedTaskId(ctx, data);
      if (taskId !== null) {
        const { sendingAt, callbackWaitFor: _w, ...rest } = data;
        const checkpoint = { ...rest, taskId, submittedAt: sendingAt };
        await job.updateData(checkpoint);
        log.info({ jobId: data.jobId, batchId: data.batchId, taskId }, 'a callback named the task of an attempt that ended without an answer; following it');
        return followAndReturn(job, checkpoint);
      }
    }

    // An earlier run marked a send and has not checkpointed: it may still be waiting for the answer (it lost its
    // lock, e.g. starved of CPU, and this run took over). Wait, writing nothing, until that answer must be in.
    if (data.sendingAt !== undefined && Date.now() < inFlightUntil(rt, data.sendingAt)) {
      const until = inFlightUntil(rt, data.sendingAt);
      log.warn({ jobId: data.jobId, batchId: data.batchId, waitMs: until - Date.now() }, 'an earlier run of this job may still be sending createTask; waiting for its answer');
      await job.moveToDelayed(until, token);
      throw new DelayedError();
    }
    // The batch's gate closed (paused) after this job was admitted: hold it again, first in its batch.
    if (batchGate) {
      await ctx.fair.rehold(job, data.batchId, token);
      log.info({ jobId: data.jobId, batchId: data.batchId, gate: batchGate.state }, 'batch gate closed; image held again');
      throw new DelayedError();
    }

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
    // A paused lane probing on its own lets exactly one image through (lane-probe.ts); the others wait.
    const gate = await enterProbeGate(ctx, job, lanePause, token);
    // prepareInput takes this image's estimated price off the credit runway (runway.ts); until createTask is sent,
    // every way out gives it back, so reservations of images not sent never hold the runway down.
    let prepared: Awaited<ReturnType<typeof ctx.prepareInput>>;
    let pass: Awaited<ReturnType<typeof createGate.pass>>;
    // The gate's place while this run holds it unsent: every way out before the send gives it back (GatePass.release).
    let unsent: typeof pass | undefined;
    try {
      prepared = await ctx.prepareInput(data, stopper.aborted);
      stopper.throwIfAborted();
      // Draining: no createTask is sent any more (one cut at the deadline would be ambiguous); the job goes back.
      stopper.throwIfDraining();
      if (!prepared.ok) {
        await releaseRunway(rt, data.jobId);
        return fail(data, prepared.failCode, prepared.failMsg, prepared.state);
      }

      // The preparation took a variable time: the exact sliding window of the create budget decides the send.
      pass = await createGate.pass();
      unsent = pass;
      // The last look: submission (a 401 met while polling, a 402, the breaker, `upscale pause`) or this image's batch
      // may have paused while this job prepared or waited at the gate. An image not sent yet then goes back, its place
      // at the gate and its runway share given back (releaseRunway), instead of spending (or meeting the same
      // refusal). The lane's pause and the batch's gate are read by the send claim, in the same atomic step as the
      // `sendingAt` mark.
      data = { ...data, ...prepared.update, sendingAt: Date.now(), attempts: (data.attempts ?? 0) + 1 };
      const claim = await claimSend(rt, job, token, data, (reason) => mayPassPause(ctx, gate, reason));
      if (claim !== 'sent') {
        await Promise.all([releaseRunway(rt, data.jobId), gate.probe && claim !== 'lost' ? releaseProbe(ctx, job) : undefined]);
        if (claim === 'lost') {
          // This run lost the job's lock while preparing; another run owns the job now and sends in its place.
          log.warn({ jobId: data.jobId, batchId: data.batchId }, 'submit job lost its lock before sending; leaving it to the run that took over');
          throw new DelayedError();
        }
        if (claim === 'paused') {
          // Back to waiting with the lane (its batch's gate, if closed too, holds it again when it starts).
          log.info({ jobId: data.jobId, batchId: data.batchId }, 'submission paused while this image waited to send; back to waiting, nothing sent');
          throw Worker.RateLimitError();
        }
        await ctx.fair.rehold(job, data.batchId, token);
        log.info({ jobId: data.jobId, batchId: data.batchId }, 'batch gate closed while this image waited to send; held again, nothing sent');
        throw new DelayedError();
      }
      unsent = undefined;
    } catch (e) {
      await Promise.all([
        unsent?.release().catch((err: unknown) => log.warn({ err, jobId: data.jobId }, 'could not give back a place at the create gate')),
        releaseRunway(rt, data.jobId).catch((err: unknown) => log.warn({ err, jobId: data.jobId }, 'could not give back a credit reservation')),
      ]);
      throw e;
    }
    await recordOrRecreate(ctx, data, { state: 'submitting', $inc: { submitAttempts: 1, ambiguousSubmits: ambiguous ? 1 : 0 } });

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
      await answeredForRunway(rt, data.jobId);
      await pass.settled(e);
      // Aborted at the drain deadline: `sendingAt` stays checkpointed, so the re-run knows this attempt is ambiguous.
      stopper.throwIfAborted();
      return handleError(job, data, e, gate, token);
    }
    // CHECKPOINT: nothing may come between createTask's answer and this.
    crashPoint('after-create');
    const submittedAt = Date.now();
    const { sendingAt: _sent, ...rest } = data;
    const checkpoint = { ...rest, taskId, submittedAt };
    await job.updateData(checkpoint);
    crashPoint('after-checkpoint');
    // Independent of each other and of following the task (whose first step, the record's move to polling, goes
    // with them): sent together (one write to Redis).
    const [followed] = await Promise.all([
      followAndReturn(job, checkpoint),
      answeredForRunway(rt, data.jobId),
      signals.answered(),
      pass.answered(),
      forgetInputFacts(rt, data.batchId, data.jobId),
      breaker.reset(),
    ]);
    if (gate.probe) await liftPause(ctx, 'submit', `the probe image was accepted (was ${gate.reason.code}: ${gate.reason.message})`);
    return followed;
  };

  async function followAndReturn(job: Job<SubmitJobData>, data: SubmitJobData & { taskId: string; submittedAt: number }) {
    await followTask(job, data);
    return { taskId: data.taskId };
  }

  /**
   * The circuit breaker's count of a failure with kie's code (src/queue/submit-breaker.ts). When it trips, submission
   * pauses, the run's other images go back to waiting, and so does this one (true is returned after that).
   */
  async function countForBreaker(job: Job<SubmitJobData>, data: SubmitJobData, error: unknown, gate: GateVerdict): Promise<boolean> {
    if (!breaker.enabled || !isKieError(error) || error.code === null || error.name === 'KieBadResponseError') return false;
    const signature = breakerSignature(error.code, error.kieMessage);
    // Sent before the breaker tripped and answered after: this image waits with the others.
    const paused = gate.probe ? null : await getPauseReason(rt.redis, rt.store.keys, 'submit');
    if (paused?.code === 'breaker' && paused.probe?.signature === signature && !paused.probe.running) return true;
    // A probe meeting the very refusal that tripped the breaker trips it again at once.
    const threshold = gate.probe && gate.reason.probe?.signature === signature ? 1 : undefined;
    const verdict = await breaker.failed({ batchId: data.batchId, jobId: data.jobId, generation: data.generation }, signature, threshold);
    if (!verdict.tripped) return verdict.joinsTrip === true;
    await pauseForBreaker(ctx, verdict.run, signature);
    await breaker.tripHandled(signature);
    await sendBackImages(ctx, verdict.images, data);
    return true;
  }

  async function handleError(job: Job<SubmitJobData>, data: SubmitJobData, error: unknown, gate: GateVerdict, token?: string): Promise<never> {
    const outcome = outcomeFor(error);
    const code = (error as { code?: unknown }).code;
    await signals.answered(error);
    const { sendingAt: _s, ...clean } = data;
    if ((outcome.kind === 'retry' || outcome.kind === 'fail') && (await countForBreaker(job, data, error, gate))) {
      // Tripped: this image waits with the lane, its retries untouched by a refusal that was not about it.
      await job.updateData({ ...clean, ...(data.retries === undefined ? {} : { retries: data.retries }) });
      await store.transition(data.batchId, data.jobId, { state: 'waiting' }, { from: ['submitting'] });
      throw Worker.RateLimitError();
    }
    if (gate.probe && outcome.kind !== 'pause') await releaseProbe(ctx, job);
    switch (outcome.kind) {
      case 'slow-down':
      case 'pause':
        // Rejected, not processed: nothing ambiguous; the image waits with the lane.
        await job.updateData(clean);
        await store.transition(data.batchId, data.jobId, { state: 'waiting' }, { from: ['submitting'] });
        if (outcome.kind === 'slow-down') return signals.slowDown(outcome);
        await signals.pause(outcome);
        throw Worker.RateLimitError();
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
        // A Retry-After on the answer is a floor for this image's wait (clamped to MAX_BACKOFF).
        if (outcome.retryAfterMs != null) delay = Math.max(delay, Math.min(config.maxBackoffMs, outcome.retryAfterMs));
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
