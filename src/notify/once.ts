/**
 * Emitting an event for a condition that several processes watch, once per occurrence: the first process to see the
 * condition sets an occurrence mark and stores the event in one Lua call, so a crash cannot separate the two and a
 * second watcher finds the mark. Clearing the mark (the condition ended) lets the next occurrence be reported.
 */
import { runScript } from '../results/scripts.js';
import type { NotifyEvent } from './events.js';
import { EMIT_FN, emitArgs, type OutboxSource } from './outbox.js';

/** KEYS: mark, event, due, recent. ARGV: mark value, mark ttl (ms, 0 = none), then the eight emitEvent arguments. */
const ONCE = `${EMIT_FN}
local set
if tonumber(ARGV[2]) > 0 then set = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) else set = redis.call('SET', KEYS[1], ARGV[1], 'NX') end
if not set then return 0 end
return emitEvent(KEYS[2], KEYS[3], KEYS[4], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10])
`;

/** Stores `event` unless the occurrence mark `markKey` is set; sets the mark. Returns true when the event is new. */
export async function emitOnce(src: OutboxSource, markKey: string, event: NotifyEvent, options: { ttlMs?: number; now?: number } = {}): Promise<boolean> {
  const { keys, args } = emitArgs(src, event, options.now);
  return (await runScript(src.redis, ONCE, [markKey, ...keys], [event.id, options.ttlMs ?? 0, ...args])) === 1;
}

/** The condition ended: the next occurrence will be reported. */
export async function clearOccurrence(src: OutboxSource, markKey: string): Promise<void> {
  await src.redis.del(markKey);
}
