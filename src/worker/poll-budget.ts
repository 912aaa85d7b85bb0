/**
 * How much of the query budget polling may spend, and how eagerly: the shared state behind budget-aware polling.
 *
 * - `shareOf(KIE_QUERY_LIMIT, POLL_BUDGET_SHARE)`: the part of the key's recordInfo budget polling uses; the rest
 *   is headroom for other users of the key. The poll queue's BullMQ limiter and an exact sliding-window gate
 *   (src/worker/sliding-gate.ts) both hold to it, so no window of kie.ai's ever sees more recordInfo calls from
 *   us than the share, whatever the network's jitter.
 * - `pressure()`: the probability threshold of the poll schedule (src/worker/poll-schedule.ts): a task is checked
 *   again when the chance that it finished since its last check reaches this value. Low pressure means frequent
 *   checks. One value for all worker processes, held in Redis and steered by a small controller so that the checks
 *   that are due keep the budget busy without queueing behind it: when more than a few polls are due but not yet
 *   started (the poll queue's wait list, prioritized set, and delayed jobs whose time has come: `LLEN`, `ZCARD` and
 *   one `ZCOUNT`, never a scan) the pressure rises; when none are, it falls. At most one step per tick globally.
 */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { RateLimit } from '../config/units.js';
import { runScript } from '../results/scripts.js';
import { SlidingGate } from './sliding-gate.js';

/**
 * `share` (0 < share ≤ 1) of a budget as a whole-number limit with the same rate: `max` becomes ⌊max × share⌋
 * (at least 1) and the window grows so the rate is exactly `max × share / durationMs`. A window of the longer
 * duration holding at most the new max never lets one of the original duration hold more.
 */
export function shareOf(limit: RateLimit, share: number): RateLimit {
  if (!(share > 0 && share <= 1)) throw new RangeError(`share must be in (0, 1], got ${share}`);
  const exact = limit.max * share;
  const max = Math.max(1, Math.floor(exact + 1e-9));
  return { max, durationMs: (limit.durationMs * max) / exact };
}

/** Pressure bounds and controller steps (per tick). */
export const PRESSURE = { min: 0.02, max: 0.95, start: 0.2, up: 1.1, down: 0.93 } as const;

/**
 * KEYS: state hash, poll wait list, prioritized set, delayed set. ARGV: tick ms, target backlog, min, max, start,
 * up, down. Returns the pressure (string). BullMQ scores delayed jobs as `timestamp × 4096 + n`.
 */
const STEER = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local p = tonumber(redis.call('HGET', KEYS[1], 'p') or ARGV[5])
local at = tonumber(redis.call('HGET', KEYS[1], 'at') or '0')
if now - at >= tonumber(ARGV[1]) then
  local due = redis.call('ZCOUNT', KEYS[4], '-inf', now * 4096 + 4095)
  local backlog = redis.call('LLEN', KEYS[2]) + redis.call('ZCARD', KEYS[3]) + due
  if backlog > tonumber(ARGV[2]) then
    p = math.min(tonumber(ARGV[4]), p * tonumber(ARGV[6]))
  elseif backlog == 0 then
    p = math.max(tonumber(ARGV[3]), p * tonumber(ARGV[7]))
  end
  redis.call('HSET', KEYS[1], 'p', tostring(p), 'at', tostring(now), 'backlog', tostring(backlog))
  redis.call('PEXPIRE', KEYS[1], 86400000)
end
return tostring(p)
`;

export class PollBudget {
  private cached = { at: 0, p: PRESSURE.start as number };
  /** Between two controller steps (and two reads of the pressure by this process), ms. */
  readonly tickMs: number;
  /** More polls due but not started than this and the pressure rises. */
  readonly targetBacklog: number;

  /** The exact sliding window of polling's share: every recordInfo passes it. */
  readonly gate: SlidingGate;

  /**
   * @param stateKey Redis hash holding the pressure (under the prefix).
   * @param gateKey Redis key of the recordInfo gate.
   * @param share the polling share of the query budget, from `shareOf`.
   * @param requestTimeoutMs KIE_REQUEST_TIMEOUT: how long an unanswered call holds its place in the gate.
   */
  constructor(
    private readonly redis: Redis,
    private readonly stateKey: string,
    gateKey: string,
    private readonly pollQueue: Queue,
    readonly share: RateLimit,
    requestTimeoutMs: number,
  ) {
    this.gate = new SlidingGate(redis, gateKey, share, requestTimeoutMs);
    this.tickMs = Math.max(10, share.durationMs / 2);
    this.targetBacklog = Math.max(1, Math.ceil(share.max / 4));
  }

  /** The pressure now (a probability in [PRESSURE.min, PRESSURE.max]); one Redis round trip per tick at most. */
  async pressure(): Promise<number> {
    const now = Date.now();
    if (now - this.cached.at < this.tickMs) return this.cached.p;
    this.cached.at = now;
    const q = this.pollQueue;
    const raw = await runScript(this.redis, STEER, [this.stateKey, q.toKey('wait'), q.toKey('prioritized'), q.toKey('delayed')], [
      Math.round(this.tickMs),
      this.targetBacklog,
      PRESSURE.min,
      PRESSURE.max,
      PRESSURE.start,
      PRESSURE.up,
      PRESSURE.down,
    ]);
    const p = Number(raw);
    this.cached.p = Number.isFinite(p) ? p : PRESSURE.start;
    return this.cached.p;
  }

  /** ms between two polls at the share's rate (the floor spacing of `n` tasks is n times this). */
  get perQueryMs(): number {
    return this.share.durationMs / this.share.max;
  }
}
