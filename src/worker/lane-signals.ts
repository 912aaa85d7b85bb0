/**
 * What the submit and poll lanes do alike when kie.ai answers: count the call by outcome code, slow every worker of
 * the lane down on 429/455 (escalating on repeats, cleared by a success), pause the lane on 401/402. Both end the
 * job's run with BullMQ's RateLimitError, which puts the job back to waiting without spending an attempt.
 */
import { Worker } from 'bullmq';
import type { Lane } from '../queue/names.js';
import type { QueueOutcome } from '../queue/outcome.js';
import { pauseLane } from '../queue/pause-reason.js';
import { slowDownLane, StrikeReset } from '../queue/slowdown.js';
import type { LaneContext } from './context.js';

type ApiLane = Extract<Lane, 'submit' | 'poll'>;
const ENDPOINT: Record<ApiLane, string> = { submit: 'createTask', poll: 'recordInfo' };
const ACTIVITY: Record<ApiLane, string> = { submit: 'submission', poll: 'polling' };

export class LaneSignals {
  private readonly strikes: StrikeReset;

  constructor(
    private readonly ctx: LaneContext,
    private readonly lane: ApiLane,
  ) {
    this.strikes = new StrikeReset(ctx.rt.redis, ctx.rt.store.keys.strikes(lane));
  }

  /** A call answered: count it (`code` is kie's code, or `none` without an answer) and, on success, clear strikes. */
  async answered(error?: unknown): Promise<void> {
    const code = error === undefined ? 200 : (error as { code?: unknown }).code;
    this.ctx.counters.inc('upscale_kie_calls_total', { endpoint: ENDPOINT[this.lane], code: typeof code === 'number' ? String(code) : 'none' });
    if (error === undefined) await this.strikes.success();
  }

  /** 429 / 455: every worker of the lane waits; this job goes back to waiting. */
  async slowDown(reason: Extract<QueueOutcome, { kind: 'slow-down' }>['reason']): Promise<never> {
    const { rt, counters, log } = this.ctx;
    const { config } = rt;
    const base = reason === 'maintenance' ? config.maintenanceBackoffMs : config.rateLimitBackoffMs;
    const s = await slowDownLane(rt.redis, rt.store.keys, rt.queues[this.lane], this.lane, base, config.maxBackoffMs);
    this.strikes.noteSlowDown();
    counters.inc('upscale_slowdowns_total', { lane: this.lane, reason });
    if (s.escalated) {
      counters.inc('upscale_rate_limit_wait_seconds_total', { lane: this.lane }, s.delayMs / 1000);
      log.warn({ lane: this.lane, reason, delayMs: s.delayMs, strikes: s.strikes }, `kie.ai asked to slow down; every ${this.lane} worker waits`);
    }
    throw Worker.RateLimitError();
  }

  /** 401 / 402: the lane pauses with a reason until `upscale resume`; this job goes back to waiting. */
  async pause(outcome: Extract<QueueOutcome, { kind: 'pause' }>): Promise<never> {
    const { rt, log } = this.ctx;
    const code = outcome.reason === 'auth' ? '401' : '402';
    await pauseLane(rt.redis, rt.store.keys, rt.queues[this.lane], this.lane, { code, message: outcome.message });
    log.error({ lane: this.lane, reason: outcome.reason }, `${ACTIVITY[this.lane]} paused: ${outcome.message}`);
    throw Worker.RateLimitError();
  }
}
