/**
 * The notification deliverer: a timer loop in every worker process (never a lane, so a slow or dead receiver holds
 * up no image). Each tick takes due deliveries from the outbox with one Lua call that also pushes their due time
 * forward by a lease, so no other process takes them meanwhile; a process that dies mid-send leaves them to be
 * taken again when the lease ends (at least once). A 2xx answer marks the delivery `delivered`; anything else is
 * tried again after an exponential backoff with jitter (RETRY_BACKOFF doubling, at most MAX_BACKOFF) until
 * NOTIFY_RETRY_FOR after the event, then marked `failed` and logged.
 */
import { TickLoop } from '../tick-loop.js';
import type { Redis } from 'ioredis';
import type { Config } from '../config/index.js';
import type { Logger } from '../log.js';
import { retryDelay } from '../queue/outcome.js';
import type { Keys } from '../queue/names.js';
import { runScript } from '../results/scripts.js';
import type { NotifyEvent } from './events.js';
import { eventBody, makeSigner, safeTarget, webhookHeaders } from './format.js';
import type { DeliveryState } from './outbox.js';
import { formatDuration } from '../config/units.js';

export interface DelivererSource {
  readonly redis: Redis;
  readonly config: Config;
  readonly store: { readonly keys: Keys };
  readonly log: Logger;
}

export interface DelivererOptions {
  /** Time between looks at the outbox. @defaultValue `500` ms */
  tickMs?: number;
  /** Timeout of one POST. @defaultValue `10000` ms */
  timeoutMs?: number;
  /** Deliveries taken per tick. @defaultValue `16` */
  batch?: number;
}

/** KEYS: due. ARGV: now, leaseUntil, max. Takes up to max due members, moving each to leaseUntil. */
const TAKE = `
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, m in ipairs(due) do redis.call('ZADD', KEYS[1], 'XX', ARGV[2], m) end
return due
`;

/**
 * KEYS: due, event. ARGV: member, field, state JSON, next (ms; '' = remove from due), leaseUntil.
 * Applies only while the member is still under this taker's lease (score = leaseUntil), so a taker whose lease
 * ran out and another took over does not write over the newer try.
 */
const SETTLE = `
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[5]) then return 0 end
if ARGV[4] == '' then redis.call('ZREM', KEYS[1], ARGV[1]) else redis.call('ZADD', KEYS[1], 'XX', ARGV[4], ARGV[1]) end
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('HSET', KEYS[2], ARGV[2], ARGV[3]) end
return 1
`;

export class Deliverer {
  private loop: TickLoop | null = null;
  private readonly sign: ReturnType<typeof makeSigner>;
  private readonly tickMs: number;
  private readonly timeoutMs: number;
  private readonly batch: number;

  constructor(
    private readonly src: DelivererSource,
    options: DelivererOptions = {},
  ) {
    this.sign = makeSigner(src.config.notifySecret);
    this.tickMs = options.tickMs ?? 500;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.batch = options.batch ?? 16;
  }

  start(): void {
    this.loop ??= new TickLoop(() => this.tick(), this.tickMs, this.src.log, 'notification delivery');
    this.loop.start();
  }

  async stop(): Promise<void> {
    await this.loop?.stop();
  }

  /** One look at the outbox: sends every due delivery taken (in parallel) and settles each. */
  async tick(now = Date.now()): Promise<number> {
    const keys = this.src.store.keys;
    const leaseUntil = now + this.timeoutMs + 5_000;
    const members = (await runScript(this.src.redis, TAKE, [keys.notifyDue], [now, leaseUntil, this.batch])) as string[];
    await Promise.all(members.map((m) => this.deliver(m, leaseUntil)));
    return members.length;
  }

  private async deliver(member: string, leaseUntil: number): Promise<void> {
    const { redis, config, store, log } = this.src;
    const [id, index] = member.split(' ') as [string, string];
    const evKey = store.keys.notifyEvent(id);
    const field = `t${index}`;
    const [eventJson, targetsJson, stateJson] = await redis.hmget(evKey, 'event', 'targets', field);
    const settle = (state: DeliveryState, next: number | null) =>
      runScript(redis, SETTLE, [store.keys.notifyDue, evKey], [member, field, JSON.stringify(state), next === null ? '' : next, leaseUntil]);
    const target = eventJson && targetsJson ? (JSON.parse(targetsJson) as string[])[Number(index)] : undefined;
    if (!eventJson || target === undefined) {
      // The event expired or is malformed: nothing to send.
      await redis.zrem(store.keys.notifyDue, member);
      return;
    }
    const event = JSON.parse(eventJson) as NotifyEvent;
    const previous: DeliveryState = stateJson ? (JSON.parse(stateJson) as DeliveryState) : { state: 'pending', attempts: 0 };
    const attempts = previous.attempts + 1;
    const body = eventBody(event, config.notifyFormat);
    const started = Date.now();
    let error: string | null = null;
    try {
      const res = await fetch(target, {
        method: 'POST',
        headers: webhookHeaders(id, body, this.sign, started),
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      await res.body?.cancel().catch(() => undefined);
      if (res.status < 200 || res.status > 299) error = `HTTP ${res.status}`;
    } catch (e) {
      const err = e as Error & { cause?: { code?: string } };
      error = err.name === 'TimeoutError' ? `no answer within ${formatDuration(this.timeoutMs)}` : (err.cause?.code ?? err.message);
    }
    const now = Date.now();
    if (error === null) {
      await settle({ state: 'delivered', attempts, lastAttemptAt: now, deliveredAt: now }, null);
      log.info({ event: id, type: event.type, target: safeTarget(target), attempts }, 'notification delivered');
      return;
    }
    if (now - event.at >= config.notifyRetryForMs) {
      await settle({ state: 'failed', attempts, lastAttemptAt: now, lastError: error }, null);
      log.error({ event: id, type: event.type, target: safeTarget(target), attempts, error }, 'notification not delivered; giving up (NOTIFY_RETRY_FOR passed)');
      return;
    }
    const next = now + retryDelay(attempts, config.retryBackoffMs, config.maxBackoffMs);
    await settle({ state: 'pending', attempts, lastAttemptAt: now, lastError: error, nextAt: next }, next);
    log.warn({ event: id, type: event.type, target: safeTarget(target), attempts, error, retryInMs: next - now }, 'notification not delivered; trying again later');
  }
}
