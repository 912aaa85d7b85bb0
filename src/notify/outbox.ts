/**
 * The notification outbox in Redis. An event is stored once under its stable id (`keys.notifyEvent(id)`, a hash:
 * `event` JSON, `type`, `batchId`, `at`, `targets`, and `t<i>` = the delivery state of target i), and each target's
 * delivery is a member `<id> <i>` of the due set (`keys.notifyDue`, score = next try, Unix ms). Storing is one Lua
 * call whose first step is HSETNX on the event: a second emit of the same occurrence, by this process or another,
 * changes nothing. The deliverer (deliver.ts) takes due members, sends, and moves them on.
 *
 * `EMIT_FN` is the same step as a Lua function, so other scripts (the finalizer's commit) can store an event in the
 * same atomic step as the state change it reports.
 */
import type { Redis } from 'ioredis';
import type { Config } from '../config/index.js';
import type { Keys } from '../queue/names.js';
import { runScript } from '../results/scripts.js';
import type { NotifyEvent } from './events.js';
import { safeTarget } from './format.js';

/** What the outbox needs from a runtime (a `Runtime` is one). */
export interface OutboxSource {
  readonly redis: Redis;
  readonly config: Pick<Config, 'notifyUrls' | 'notifyRetryForMs'>;
  readonly store: { readonly keys: Keys };
}

/** Events listed in `keys.notifyRecent` (older ones drop out of the list; their hashes expire on their own). */
export const RECENT_EVENTS = 500;

/**
 * Lua: `emitEvent(evKey, dueKey, recentKey, id, eventJson, type, batchId, targetsJson, ntargets, now, ttlMs)` →
 * 1 stored, 0 already there.
 */
export const EMIT_FN = `
local function emitEvent(evKey, dueKey, recentKey, id, eventJson, etype, batchId, targetsJson, ntargets, now, ttl)
  if redis.call('HSETNX', evKey, 'event', eventJson) == 0 then return 0 end
  redis.call('HSET', evKey, 'type', etype, 'batchId', batchId, 'at', now, 'targets', targetsJson)
  for i = 0, tonumber(ntargets) - 1 do
    redis.call('HSET', evKey, 't' .. i, '{"state":"pending","attempts":0}')
    redis.call('ZADD', dueKey, now, id .. ' ' .. i)
  end
  redis.call('ZADD', recentKey, now, id)
  redis.call('ZREMRANGEBYRANK', recentKey, 0, -${RECENT_EVENTS + 1})
  redis.call('PEXPIRE', evKey, ttl)
  return 1
end
`;

const EMIT = `${EMIT_FN}
return emitEvent(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8])`;

/** An event hash outlives its retries by a week, so its delivery state stays visible. */
export function eventTtlMs(src: OutboxSource): number {
  return src.config.notifyRetryForMs + 7 * 86_400_000;
}

/** Keys and arguments of `emitEvent` for `event` (KEYS: event, due, recent; ARGV: the other eight, in order). */
export function emitArgs(src: OutboxSource, event: NotifyEvent, now = Date.now()): { keys: string[]; args: (string | number)[] } {
  const k = src.store.keys;
  return {
    keys: [k.notifyEvent(event.id), k.notifyDue, k.notifyRecent],
    args: [event.id, JSON.stringify(event), event.type, event.batchId ?? '', JSON.stringify(src.config.notifyUrls), src.config.notifyUrls.length, now, eventTtlMs(src)],
  };
}

/** Stores `event` for delivery to every NOTIFY_URL unless its id is already stored. Returns true when it was new. */
export async function emit(src: OutboxSource, event: NotifyEvent, now = Date.now()): Promise<boolean> {
  const { keys, args } = emitArgs(src, event, now);
  return (await runScript(src.redis, EMIT, keys, args)) === 1;
}

/** The delivery of one event to one target. */
export interface DeliveryState {
  state: 'pending' | 'delivered' | 'failed';
  attempts: number;
  /** Last HTTP status or error, when a try failed. */
  lastError?: string;
  lastAttemptAt?: number;
  deliveredAt?: number;
  /** Next try (Unix ms) while pending. */
  nextAt?: number;
}

export interface StoredEvent {
  event: NotifyEvent;
  targets: string[];
  deliveries: DeliveryState[];
}

/** The stored event `id` with its delivery states, or null when unknown (never emitted, or expired). */
export async function getEvent(src: OutboxSource, id: string): Promise<StoredEvent | null> {
  const h = await src.redis.hgetall(src.store.keys.notifyEvent(id));
  if (!h.event) return null;
  const targets = JSON.parse(h.targets ?? '[]') as string[];
  const deliveries = targets.map((_, i) => {
    const raw = h[`t${i}`];
    return raw ? (JSON.parse(raw) as DeliveryState) : { state: 'pending' as const, attempts: 0 };
  });
  return { event: JSON.parse(h.event) as NotifyEvent, targets, deliveries };
}

/** The newest events first (at most `limit`), optionally only those about `batchId`. */
export async function recentEvents(src: OutboxSource, options: { limit?: number; batchId?: string } = {}): Promise<StoredEvent[]> {
  const ids = await src.redis.zrevrange(src.store.keys.notifyRecent, 0, RECENT_EVENTS - 1);
  const out: StoredEvent[] = [];
  const limit = options.limit ?? 20;
  for (const id of ids) {
    if (out.length >= limit) break;
    const e = await getEvent(src, id);
    if (!e) continue;
    if (options.batchId !== undefined && e.event.batchId !== options.batchId) continue;
    out.push(e);
  }
  return out;
}

export interface OutboxSummary {
  /** Targets configured in this process (NOTIFY_URL). */
  targets: number;
  /** Deliveries waiting for their (next) try. */
  pending: number;
  /** The oldest pending delivery's last error, if it failed before. */
  lastError: string | null;
  /** Recent events with their delivery states, newest first: counts over the targets, and each target's own state. */
  recent: {
    id: string;
    type: string;
    batchId: string | null;
    at: number;
    text: string;
    delivered: number;
    pending: number;
    failed: number;
    lastError: string | null;
    /** One per NOTIFY_URL the event was stored for, in order: the target without path or query (`safeTarget`). */
    targets: { target: string; state: DeliveryState['state']; attempts: number; lastError: string | null }[];
  }[];
}

/** What `upscale status` and the batches page show about notifications. */
export async function outboxSummary(src: OutboxSource, options: { limit?: number; batchId?: string } = {}): Promise<OutboxSummary> {
  const pending = await src.redis.zcard(src.store.keys.notifyDue);
  const events = await recentEvents(src, options);
  const recent = events.map((e) => {
    const count = (s: DeliveryState['state']) => e.deliveries.filter((d) => d.state === s).length;
    const err = e.deliveries.find((d) => d.state !== 'delivered' && d.lastError)?.lastError ?? null;
    const targets = e.deliveries.map((d, i) => ({ target: safeTarget(e.targets[i] ?? ''), state: d.state, attempts: d.attempts, lastError: d.lastError ?? null }));
    return { id: e.event.id, type: e.event.type, batchId: e.event.batchId, at: e.event.at, text: e.event.text, delivered: count('delivered'), pending: count('pending'), failed: count('failed'), lastError: err, targets };
  });
  const lastError = recent.find((r) => r.pending > 0 && r.lastError)?.lastError ?? null;
  return { targets: src.config.notifyUrls.length, pending, lastError, recent };
}
