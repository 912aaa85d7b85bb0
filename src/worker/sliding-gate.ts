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
 * A budget set above the account's real one (or a key shared with another client) is learned from kie.ai's
 * refusals: a call answered 429 (`GatePass.refused()`) keeps counting like an answered call (whether kie.ai counts
 * refused calls is not documented: KIE_API.md), and lowers the gate's effective `max` to the calls that were not
 * refused and still count, and at least one below the effective `max` before it. A burst into a lower real budget
 * thus ends with the gate's `max` at what kie.ai accepted, and the next bursts fit. The learned `max` climbs back by
 * one call per `RECOVER_WINDOWS` windows without a refusal, up to the configured one: against a budget that stays
 * lower that costs at most one 429 per `RECOVER_WINDOWS` windows, and a budget restored is used in full again.
 *
 * Two clocks meet here, so each entry counts a little longer than the window: 1 ms, as Redis' time is read in whole
 * ms rounded down (an answer seen at 12.9 ms would otherwise count from 12), and 0.1 % of the window, as kie.ai's
 * clock and Redis' may run at slightly different rates (NTP slews a clock by at most 0.05 %). Those are the only gaps
 * in the argument above (the simulator keeps its window to the microsecond, on another clock than Redis'; loaded
 * test runs at exactly the budget saw an occasional 429 before the slack).
 *
 * Waiters queue in the order they first asked (two small sorted sets beside the gate's), and each sleeps until its
 * turn can first come instead of asking again on a fixed step (see TAKE).
 *
 * Times come from Redis' clock (`TIME`), so machines' clocks do not matter. Memory: at most `max` members (a few
 * dozen bytes each) plus those of calls that died unanswered, until their expiry, and one member per waiter; after a refusal, a second sorted
 * set of the refused calls (expiring with them) and a two-field hash (expiring when the learned `max` is back at
 * the configured one).
 */
import { randomBytes } from 'node:crypto';
import type { RateLimit } from '../config/units.js';
import type { Redis } from 'ioredis';
import { runScript } from '../results/scripts.js';

/**
 * A pass's member in the gate's sorted set: unique across processes (a random 48-bit tag per process, 8 characters)
 * and within one (a counter after it, base 36); one random draw per process instead of one per call. Short: with a
 * generous budget the set holds every call of a window (scenario 4 of the benchmark: thousands).
 */
const PROCESS_TAG = randomBytes(6).toString('base64url');
let passes = 0;
const nextMember = (): string => `${PROCESS_TAG}${(++passes).toString(36)}`;

/** Windows without a refusal for the learned `max` to climb back by one call. */
export const RECOVER_WINDOWS = 4;

/**
 * The effective `max` now, in Lua: the configured one (ARGV[1]) unless a refusal lowered it; `key` is the learned
 * hash { max, at }. Climbs back by one per RECOVER_WINDOWS windows since the refusal.
 */
const EFFECTIVE_MAX = `
local function effective_max(now, window, key)
  local configured = tonumber(ARGV[1])
  local learned = redis.call('HMGET', key, 'max', 'at')
  if not learned[1] then return configured end
  local climbed = tonumber(learned[1]) + math.floor((now - tonumber(learned[2])) / (window * ${RECOVER_WINDOWS}))
  return math.min(configured, climbed)
end
`;

/**
 * KEYS: the gate's sorted set, its queue of waiters (member → when it first asked), the waiters' liveness (member →
 * by when it asks again), the lane's slow-down key (or a key never set: while it lives, nothing passes), the learned
 * hash. ARGV: max, window ms, hold ms (request timeout), member, grace ms.
 * Returns 0 when the call may go now (its entry added), else how many ms to wait before asking again.
 *
 * Waiters go in the order they first asked. One at rank r (r waiters ahead) goes once fewer than max − r calls
 * count (max: the effective one); until then it sleeps until the earliest moment its turn can come, the (i + 1)-th
 * free place with i = count + r − max: entry i stops counting at its score, and never before one window from now if
 * unanswered (it counts until its answer + window); a place beyond the `count` entries needs calls not sent yet, and
 * at most `max` are sent in any window from now, each counting a window: so not before ⌈(i + 1 − count) / max⌉
 * windows. So each waiter asks about once per call it lets through, however many wait: polling on a fixed step made
 * every waiter ask many times per call (about 100 asks per image with 64 submit jobs waiting, the catalogue
 * benchmark's worker CPU). A waiter that stops asking (a dead process) leaves the queue `grace` ms after it was due
 * back.
 */
const TAKE = `${EFFECTIVE_MAX}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
local hold = tonumber(ARGV[3])
local member = ARGV[4]
local grace = tonumber(ARGV[5])
local ttl = hold + window + grace
local dead = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 100)
if #dead > 0 then
  redis.call('ZREM', KEYS[3], unpack(dead))
  redis.call('ZREM', KEYS[2], unpack(dead))
end
local slow = redis.call('PTTL', KEYS[4])
if slow > 0 then
  if redis.call('ZSCORE', KEYS[2], member) then redis.call('ZADD', KEYS[3], now + slow + grace, member) end
  return slow
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local count = redis.call('ZCARD', KEYS[1])
local rank = redis.call('ZRANK', KEYS[2], member)
if not rank then
  redis.call('ZADD', KEYS[2], now, member)
  rank = redis.call('ZRANK', KEYS[2], member)
end
local max = effective_max(now, window, KEYS[5])
if count + rank < max then
  redis.call('ZADD', KEYS[1], now + hold + window + math.ceil(window / 1000) + 1, member)
  redis.call('ZREM', KEYS[2], member)
  redis.call('ZREM', KEYS[3], member)
  redis.call('PEXPIRE', KEYS[1], hold + window + 1000)
  return 0
end
local idx = count + rank - max
local wait
if idx < count then
  local e = redis.call('ZRANGE', KEYS[1], idx, idx, 'WITHSCORES')
  wait = math.min(tonumber(e[2]) - now, window)
else
  wait = window * math.ceil((idx + 1 - count) / max)
end
wait = math.max(1, wait)
redis.call('ZADD', KEYS[3], now + wait + grace, member)
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('PEXPIRE', KEYS[3], ttl)
return wait
`;

/** KEYS: the gate's sorted set. ARGV: member, window ms. The call was answered: it counts one window from now, if sooner. */
const ANSWERED = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cur = redis.call('ZSCORE', KEYS[1], ARGV[1])
local till = now + tonumber(ARGV[2]) + math.ceil(tonumber(ARGV[2]) / 1000) + 1
if cur and till < tonumber(cur) then redis.call('ZADD', KEYS[1], 'XX', till, ARGV[1]) end
return 0
`;

/**
 * KEYS: the gate's sorted set, the refused calls' sorted set, the learned hash. ARGV: configured max, window ms,
 * member. The call was refused (429): it counts one window from now like an answered call, and the effective max
 * drops to the calls still counting that were not refused, and at least one below what it was. Returns the new max.
 */
const REFUSED = `${EFFECTIVE_MAX}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
local till = now + window + math.ceil(window / 1000) + 1
local cur = redis.call('ZSCORE', KEYS[1], ARGV[3])
if cur and till < tonumber(cur) then redis.call('ZADD', KEYS[1], 'XX', till, ARGV[3]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZADD', KEYS[2], till, ARGV[3])
redis.call('PEXPIRE', KEYS[2], window + 1000)
local accepted = redis.call('ZCARD', KEYS[1]) - redis.call('ZCARD', KEYS[2])
local configured = tonumber(ARGV[1])
local learned = math.max(1, math.min(effective_max(now, window, KEYS[3]) - 1, accepted))
redis.call('HSET', KEYS[3], 'max', learned, 'at', now)
redis.call('PEXPIRE', KEYS[3], (configured - learned) * window * ${RECOVER_WINDOWS} + window)
return learned
`;

/** A call let through the gate: report its answer with `answered()` (not after a transport failure). */
export interface GatePass {
  /** ms waited at the gate. */
  readonly waitedMs: number;
  /** The call got an answer (any HTTP status): its entry counts one window from now at most, then frees. */
  answered(): Promise<void>;
  /**
   * The call was refused for the rate (429): it counts like an answered call, and the gate learns a lower `max`
   * (see the module's comment). Resolves to the effective `max` now, calls per window.
   */
  refused(): Promise<number>;
  /** Reports how the call ended: `refused()` for a 429, `answered()` for any other answer, nothing without one. */
  settled(error?: unknown): Promise<void>;
  /**
   * The call was not sent after all (the lane or its batch paused meanwhile, the job lost its lock, a write before
   * the send failed): its place is given back at once. Without this an unsent call held its place for the request
   * timeout plus a window (40 s at kie.ai's budget), so a burst of lost locks on a starved machine took the whole
   * create budget (the catalogue test at load 18: 50 images in the first 76 s). Never after the call may have left:
   * only a call that was never sent cannot arrive.
   */
  release(): Promise<void>;
}

export class SlidingGate {
  /** The hash of the `max` learned from refusals (absent while the configured one holds). */
  private readonly learnedKey: string;

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
    this.learnedKey = `${key}:learned`;
  }

  /** The effective `max` now (calls per window): the configured one, or lower after refusals. */
  async effectiveMax(): Promise<number> {
    const [max, at] = await this.redis.hmget(this.learnedKey, 'max', 'at');
    if (max === null || at === null) return Math.floor(this.limit.max);
    const [sec, micro] = await this.redis.time();
    const now = Number(sec) * 1000 + Math.floor(Number(micro) / 1000);
    return Math.min(Math.floor(this.limit.max), Number(max) + Math.floor((now - Number(at)) / (this.limit.durationMs * RECOVER_WINDOWS)));
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
      await pass.settled(e);
      throw e;
    }
    await pass.settled();
    return result;
  }

  /** Waits until a call may be sent without any window of kie.ai's holding more than `limit.max`. */
  async pass(): Promise<GatePass> {
    const member = nextMember();
    const keys = [this.key, `${this.key}:queue`, `${this.key}:live`, this.slowdownKey ?? `${this.key}:noslowdown`, this.learnedKey];
    // A live waiter asks again within this much of when it said it would (a starved event loop, a GC pause).
    const graceMs = Math.round(this.limit.durationMs + 1000);
    let waitedMs = 0;
    for (;;) {
      const wait = Number(await runScript(this.redis, TAKE, keys, [Math.floor(this.limit.max), this.limit.durationMs, Math.round(this.holdMs), member, graceMs]));
      if (wait <= 0) break;
      waitedMs += wait;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
    const answered = async () => {
      await runScript(this.redis, ANSWERED, [this.key], [member, this.limit.durationMs]);
    };
    const refused = async () =>
      Number(await runScript(this.redis, REFUSED, [this.key, `${this.key}:refused`, this.learnedKey], [Math.floor(this.limit.max), this.limit.durationMs, member]));
    return {
      waitedMs,
      answered,
      refused,
      release: async () => {
        await this.redis.zrem(this.key, member);
      },
      settled: async (error?: unknown) => {
        if (error === undefined) return answered();
        if (isRateLimited(error)) await refused();
        else if (gotAnswer(error)) await answered();
      },
    };
  }
}

/** Whether an error from the kie client is kie.ai's rate-limit refusal (429, as HTTP status or envelope code). */
export function isRateLimited(error: unknown): boolean {
  const e = error as { code?: unknown; httpStatus?: unknown } | null;
  return e?.code === 429 || e?.httpStatus === 429;
}

/** Whether an error from the kie client means kie.ai answered (an HTTP status or an envelope code came back). */
export function gotAnswer(error: unknown): boolean {
  const e = error as { code?: unknown; httpStatus?: unknown } | null;
  return typeof e?.code === 'number' || typeof e?.httpStatus === 'number';
}
