/**
 * A 429 or 455 slows every worker of a lane down at once: `queue.rateLimit(ms)` makes all of them wait, and the
 * delay doubles with each repeat (455 starts longer). A repeat is a strike with no successful call since the
 * previous one: a success clears the strikes (`StrikeReset`), so a configured limit above the account's real one
 * settles into "wait one window, send what fits" instead of escalating without end, while an API that refuses
 * everything is backed off exponentially. Only the first worker to see an error during a slow-down escalates it;
 * the others just wait it out, so ten parallel 429s count as one strike.
 */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Keys, Lane } from './names.js';

/**
 * KEYS: slowdown, strikes. ARGV: baseMs, maxMs, askedMs (a Retry-After in ms, or -1). Returns { delayMs, escalated
 * (1/0), strikes }. An asked wait replaces the escalation and extends a shorter slow-down already in force.
 */
const ESCALATE = `
local ttl = redis.call('PTTL', KEYS[1])
local asked = tonumber(ARGV[3])
if ttl > 0 and (asked < 0 or asked <= ttl) then return { ttl, 0, tonumber(redis.call('GET', KEYS[2]) or '0') } end
local strikes = redis.call('INCR', KEYS[2])
local delay = math.min(tonumber(ARGV[2]), tonumber(ARGV[1]) * 2 ^ (strikes - 1))
if asked >= 0 then delay = math.max(1, math.min(tonumber(ARGV[2]), asked)) end
delay = math.floor(delay)
redis.call('SET', KEYS[1], strikes, 'PX', delay)
redis.call('PEXPIRE', KEYS[2], math.floor(delay * 2 + tonumber(ARGV[1]) * 4))
return { delay, 1, strikes }
`;

export interface SlowDown {
  delayMs: number;
  /** False when another worker had already slowed the lane down for the same burst. */
  escalated: boolean;
  strikes: number;
}

export async function slowDownLane(
  redis: Redis,
  keys: Keys,
  queue: Queue,
  lane: Lane,
  baseMs: number,
  maxMs: number,
  /** The wait the answer asked for (Retry-After, ms): used instead of the escalation, clamped to `maxMs`. */
  askedMs: number | null = null,
): Promise<SlowDown> {
  const asked = askedMs === null || !Number.isFinite(askedMs) || askedMs < 0 ? -1 : Math.round(askedMs);
  const [delayMs, escalated, strikes] = (await redis.eval(ESCALATE, 2, keys.slowdown(lane), keys.strikes(lane), baseMs, maxMs, asked)) as [
    number,
    number,
    number,
  ];
  if (escalated === 1) await queue.rateLimit(delayMs);
  return { delayMs, escalated: escalated === 1, strikes };
}

/**
 * Clears a lane's strikes after a successful call. Only a process that has seen a slow-down recently sends the
 * DEL, so a healthy run pays nothing for it.
 */
export class StrikeReset {
  private seenAt = 0;

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly memoryMs = 10 * 60_000,
  ) {}

  /** Call when this process sees a slow-down. */
  noteSlowDown(): void {
    this.seenAt = Date.now();
  }

  /** Call after every successful call. */
  async success(): Promise<void> {
    if (this.seenAt === 0 || Date.now() - this.seenAt > this.memoryMs) return;
    this.seenAt = 0;
    await this.redis.del(this.key);
  }
}
