/**
 * What the submit and poll lanes do alike when kie.ai answers: count the call by outcome code, slow every worker of
 * the lane down on 429/455 (for the answer's Retry-After when it gives one, else escalating on repeats, cleared by a
 * success), and pause submission on 401/402/433 from either lane (a 401 pauses polling too: the key is refused).
 * A slow-down, and a pause of the job's own lane, end the job's run with BullMQ's RateLimitError, which puts the job
 * back to waiting without spending an attempt.
 */
import { Worker } from 'bullmq';
import { formatDuration } from '../config/units.js';
import { LANE_ACTIVITY, type Lane } from '../queue/names.js';
import type { QueueOutcome } from '../queue/outcome.js';
import { slowDownLane, StrikeReset } from '../queue/slowdown.js';
import type { LaneContext } from './context.js';
import { pauseWithProbe } from './lane-probe.js';

type ApiLane = Extract<Lane, 'submit' | 'poll'>;
const ENDPOINT: Record<ApiLane, string> = { submit: 'createTask', poll: 'recordInfo' };

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

  /**
   * 429 / 455: every worker of the lane waits; this job goes back to waiting. A Retry-After (seconds or HTTP-date,
   * parsed by the client) sets the wait, clamped to MAX_BACKOFF; without one (or an invalid one) the wait escalates.
   */
  async slowDown(outcome: Extract<QueueOutcome, { kind: 'slow-down' }>): Promise<never> {
    const { rt, counters, log } = this.ctx;
    const { config } = rt;
    const { reason, retryAfterMs } = outcome;
    const base = reason === 'maintenance' ? config.maintenanceBackoffMs : config.rateLimitBackoffMs;
    const s = await slowDownLane(rt.redis, rt.store.keys, rt.queues[this.lane], this.lane, base, config.maxBackoffMs, retryAfterMs);
    this.strikes.noteSlowDown();
    counters.inc('upscale_slowdowns_total', { lane: this.lane, reason });
    if (s.escalated) {
      counters.inc('upscale_rate_limit_wait_seconds_total', { lane: this.lane }, s.delayMs / 1000);
      const asked = retryAfterMs === null ? {} : { retryAfterMs, retryAfter: formatDuration(retryAfterMs) };
      log.warn(
        { lane: this.lane, reason, delayMs: s.delayMs, strikes: s.strikes, ...asked },
        retryAfterMs === null
          ? `kie.ai asked to slow down; every ${this.lane} worker waits`
          : `kie.ai asked to slow down with Retry-After ${formatDuration(retryAfterMs)}; every ${this.lane} worker waits ${formatDuration(s.delayMs)}`,
      );
    }
    throw Worker.RateLimitError();
  }

  /**
   * 401 / 402 / 433: submission pauses with a self-lifting reason (lane-probe.ts); a 401 pauses polling too. When
   * this job's own lane paused, the job goes back to waiting (RateLimitError); otherwise (402/433 met while polling)
   * this returns and the caller parks the job.
   */
  async pause(outcome: Extract<QueueOutcome, { kind: 'pause' }>): Promise<void> {
    const { log } = this.ctx;
    const lanes: ApiLane[] = outcome.reason === 'auth' ? ['submit', 'poll'] : ['submit'];
    for (const lane of lanes) {
      const r = await pauseWithProbe(this.ctx, lane, {
        code: outcome.code,
        message: outcome.message,
        source: this.lane,
        kind: outcome.reason === 'auth' ? 'key' : 'image',
      });
      log.error(
        { lane, code: outcome.code, source: this.lane, nextProbeAt: r.probe ? new Date(r.probe.at).toISOString() : null },
        `${LANE_ACTIVITY[lane]} paused: ${outcome.message}`,
      );
    }
    if (lanes.includes(this.lane)) throw Worker.RateLimitError();
  }
}
