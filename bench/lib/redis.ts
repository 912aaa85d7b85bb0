/** Redis helpers of the benchmarks: a fresh prefix per scenario, cleanup, and what Redis spends (memory, CPU). */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export function redisClient(): Redis {
  return new Redis(REDIS_URL, { maxRetriesPerRequest: 3 });
}

/** A prefix no other run uses, e.g. `bench-s1-1a2b3c`. */
export function freshPrefix(label: string): string {
  return `bench-${label}-${randomBytes(3).toString('hex')}`;
}

async function scanKeys(redis: Redis, prefix: string, each: (keys: string[]) => Promise<void>): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 2000);
    cursor = next;
    if (keys.length > 0) await each(keys);
  } while (cursor !== '0');
}

/** Deletes every key under `prefix` (BullMQ's and ours). */
export async function deletePrefix(redis: Redis, prefix: string): Promise<number> {
  let deleted = 0;
  await scanKeys(redis, prefix, async (keys) => {
    deleted += await redis.unlink(...keys);
  });
  return deleted;
}

/** `used_memory` from INFO memory, bytes. */
export async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? NaN);
}

/** Redis' own CPU time so far (used_cpu_sys + used_cpu_user), milliseconds. */
export async function redisCpuMs(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const sys = Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1] ?? 0);
  const user = Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1] ?? 0);
  return (sys + user) * 1000;
}

/** Redis command calls so far (INFO stats total_commands_processed). */
export async function redisCommands(redis: Redis): Promise<number> {
  const info = await redis.info('stats');
  return Number(/total_commands_processed:(\d+)/.exec(info)?.[1] ?? 0);
}

/**
 * `MEMORY USAGE` of every key under `prefix`, summed per kind of key: the part after the prefix with ids and
 * numbers replaced by `*` (`bull:poll:<id>` → `poll:*`).
 */
export async function memoryByKind(redis: Redis, prefix: string): Promise<{ total: number; keys: number; byKind: Record<string, { keys: number; bytes: number }> }> {
  const byKind: Record<string, { keys: number; bytes: number }> = {};
  let total = 0;
  let count = 0;
  await scanKeys(redis, prefix, async (keys) => {
    const p = redis.pipeline();
    for (const k of keys) p.memory('USAGE', k, 'SAMPLES', '0');
    const res = (await p.exec()) ?? [];
    keys.forEach((k, i) => {
      const bytes = Number(res[i]?.[1] ?? 0);
      const kind = k
        .slice(prefix.length + 1)
        .replace(/[0-9a-f]{24}(-g\d+)?(-[pd])?/g, '<id>')
        .replace(/:\d+(?=$|:)/g, ':<n>');
      const e = (byKind[kind] ??= { keys: 0, bytes: 0 });
      e.keys += 1;
      e.bytes += bytes;
      total += bytes;
      count += 1;
    });
  });
  return { total, keys: count, byKind };
}

/** Calls per command so far (INFO commandstats), e.g. `{ evalsha: 1200, hget: 300 }`. Commands run by Lua scripts count too. */
export async function commandStats(redis: Redis): Promise<Record<string, number>> {
  const info = await redis.info('commandstats');
  const out: Record<string, number> = {};
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out[m[1] as string] = Number(m[2]);
  return out;
}

/** Per-unit difference of two `commandStats` snapshots, biggest first, zeros dropped. */
export function commandDelta(before: Record<string, number>, after: Record<string, number>, per: number): Record<string, number> {
  const d = Object.entries(after)
    .map(([k, v]) => [k, (v - (before[k] ?? 0)) / per] as const)
    .filter(([, v]) => v > 0.005)
    .sort((a, b) => b[1] - a[1]);
  return Object.fromEntries(d.map(([k, v]) => [k, Math.round(v * 100) / 100]));
}
