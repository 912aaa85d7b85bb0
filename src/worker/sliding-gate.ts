/**
 * An exact sliding-window gate for one kie.ai budget, shared by every worker process through one Redis sorted set.
 *
 * kie.ai counts a call in its window when the call *arrives*; we know neither that instant nor the network's delay,
 * only that it lies between our send and our answer. So each call is an entry that counts until `answer + window`
 * (until `send + request timeout + window` while no answer came back, which also covers a call whose process died),
 * and a call may be sent only while fewer than `max` entries count.
 *
 * Why that is exact: take any window of kie.ai's, ending at the arrival a_k of some call k, and the call j in it
 * that was sent last (at t_j). Every other call i in the window arrived after a_k − window ≥ t_j − window
 * (a_k ≥ a_j ≥ t_j), so its answer came after t_j − window and it still counted when j was let through; j was let
 * through only with fewer than `max` counting, so the window holds at most `max`. No guard time is assumed, whatever
 * the network's or the event loop's jitter: a slow answer just holds its entry longer.
 *
 * The price: each call holds its place for one window plus its round trip, so the steady rate is
 * `max / (window + round trip)`; the first window's burst is used in full. A guard-based gate (count until
 * `send + guard + window`) would cost a fixed guard instead, but breaks the window whenever a call takes longer
 * than the guard to arrive, which a loaded machine does (tried: createTask 429s under load).
 *
 * Times come from Redis' clock (`TIME`), so machines' clocks do not matter. Memory: at most `max` members (a few
 * dozen bytes each) plus those of calls that died unanswered, until their expiry.
 */
import { randomBytes } from 'node:crypto';
import type { RateLimit } from '../config/units.js';
import type { Redis } from 'ioredis';
import { runScript } from '../results/scripts.js';

/**
 * KEYS: the gate's sorted set, optionally the lane's slow-down key (while it lives, nothing passes). ARGV: max,
 * window ms, hold ms (request timeout), member, retry step ms.
 * Returns 0 when the call may go now (its entry added), else how many ms to wait before asking again.
 */
const TAKE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
local hold = tonumber(ARGV[3])
if KEYS[2] then
  local slow = redis.call('PTTL', KEYS[2])
  if slow > 0 then return slow end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + hold + window, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], hold + window + 1000)
  return 0
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, math.min(tonumber(first[2]) - now, tonumber(ARGV[5])))
`;

/** KEYS: the gate's sorted set. ARGV: member, window ms. The call was answered: it counts one window from now, if sooner. */
const ANSWERED = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cur = redis.call('ZSCORE', KEYS[1], ARGV[1])
local till = now + tonumber(ARGV[2])
if cur and till < tonumber(cur) then redis.call('ZADD', KEYS[1], 'XX', till, ARGV[1]) end
return 0
`;

/** A call let through the gate: report its answer with `answered()` (not after a transport failure). */
export interface GatePass {
  /** ms waited at the gate. */
  readonly waitedMs: number;
  /** The call got an answer (any HTTP status): its entry counts one window from now at most, then frees. */
  answered(): Promise<void>;
  /** The call was not sent after all (the lane paused meanwhile): its place is given back at once. */
  release(): Promise<void>;
}

export class SlidingGate {
  /**
   * @param key Redis key of the gate (under the prefix).
   * @param limit calls per window (`max` per `durationMs`), already reduced by any share kept for others.
   * @param holdMs how long an unanswered call may still be on its way (KIE_REQUEST_TIMEOUT; the client aborts then), ms.
   * @param slowdownKey the lane's slow-down key (src/queue/slowdown.ts): after a 429, calls already past BullMQ's
   *   limiter wait here too instead of meeting kie.ai's refusal.
   */
  constructor(
    private readonly redis: Redis,
    readonly key: string,
    readonly limit: RateLimit,
    private readonly holdMs: number,
    private readonly slowdownKey?: string,
  ) {
    if (!(limit.max >= 1) || !(limit.durationMs > 0)) throw new RangeError(`gate ${key}: limit must be at least 1 per a positive window`);
  }

  /**
   * Runs `call` through the gate: waits for a pass, then reports the answer unless the call failed without one.
   * Resolves or rejects as `call` does.
   */
  async through<T>(call: () => Promise<T>): Promise<T> {
    const pass = await this.pass();
    let result: T;
    try {
      result = await call();
    } catch (e) {
      if (gotAnswer(e)) await pass.answered();
      throw e;
    }
    await pass.answered();
    return result;
  }

  /** Waits until a call may be sent without any window of kie.ai's holding more than `limit.max`. */
  async pass(): Promise<GatePass> {
    const member = randomBytes(9).toString('base64url');
    const step = Math.max(1, Math.round(this.limit.durationMs / this.limit.max / 2));
    let waitedMs = 0;
    for (;;) {
      const wait = Number(await runScript(this.redis, TAKE, this.slowdownKey ? [this.key, this.slowdownKey] : [this.key], [Math.floor(this.limit.max), this.limit.durationMs, Math.round(this.holdMs), member, step]));
      if (wait <= 0) break;
      waitedMs += wait;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
    return {
      waitedMs,
      answered: async () => {
        await runScript(this.redis, ANSWERED, [this.key], [member, this.limit.durationMs]);
      },
      release: async () => {
        await this.redis.zrem(this.key, member);
      },
    };
  }
}

/** Whether an error from the kie client means kie.ai answered (an HTTP status or an envelope code came back). */
export function gotAnswer(error: unknown): boolean {
  const e = error as { code?: unknown; httpStatus?: unknown } | null;
  return typeof e?.code === 'number' || typeof e?.httpStatus === 'number';
}
