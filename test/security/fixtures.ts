/**
 * Shared parts of the security tests: a real `upscale serve` process, a fingerprint of every key under a prefix
 * (to prove a refused request changed nothing), and a dump of every value under a prefix, whatever its type (to
 * prove a secret is stored nowhere).
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { spawnUpscale, type Proc } from '../helpers/processes.js';
import { waitFor } from '../helpers/redis.js';

/** Spawns `upscale serve --port 0 ...args` and resolves once it listens, with its URL. */
export async function startServe(env: Record<string, string>, args: string[] = []): Promise<{ proc: Proc; url: string }> {
  const proc = spawnUpscale(['serve', '--port', '0', ...args], env);
  const url = await waitFor(() => /listening on (http:\/\/\S+)/.exec(proc.stdout())?.[1] ?? (proc.child.exitCode !== null ? 'exited' : null), {
    timeoutMs: 30_000,
    what: 'upscale serve to listen',
  });
  if (url === 'exited') throw new Error(`upscale serve exited ${proc.child.exitCode}: ${proc.stderr()}`);
  return { proc, url };
}

async function keysOf(redis: Redis, prefix: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    out.push(...batch);
  } while (cursor !== '0');
  return out.sort();
}

/**
 * A digest per key under `prefix` (its DUMP, so any change of value or type shows), without the keys `skip` names.
 * Two equal fingerprints mean nothing under the prefix was written in between.
 */
export async function fingerprint(redis: Redis, prefix: string, skip: (key: string) => boolean = () => false): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const key of await keysOf(redis, prefix)) {
    if (skip(key)) continue;
    const dump = await redis.dumpBuffer(key);
    out[key] = dump ? createHash('sha256').update(dump).digest('hex').slice(0, 16) : 'gone';
  }
  return out;
}

/**
 * Every key under `prefix` and every value it holds as text: strings, hashes (fields and values), lists, sets,
 * sorted sets (with scores) and streams (ids, fields and values). Returns the text and the types seen.
 */
export async function dumpPrefix(redis: Redis, prefix: string): Promise<{ text: string; types: Record<string, number>; keys: number }> {
  const parts: string[] = [];
  const types: Record<string, number> = {};
  const keys = await keysOf(redis, prefix);
  for (const key of keys) {
    const type = await redis.type(key);
    types[type] = (types[type] ?? 0) + 1;
    parts.push(`## ${type} ${key}`);
    if (type === 'string') parts.push((await redis.getBuffer(key))?.toString('latin1') ?? '');
    else if (type === 'hash') parts.push(JSON.stringify(await redis.hgetall(key)));
    else if (type === 'list') parts.push(JSON.stringify(await redis.lrange(key, 0, -1)));
    else if (type === 'set') parts.push(JSON.stringify(await redis.smembers(key)));
    else if (type === 'zset') parts.push(JSON.stringify(await redis.zrange(key, '0', '-1', 'WITHSCORES')));
    else if (type === 'stream') parts.push(JSON.stringify(await redis.xrange(key, '-', '+')));
    else if (type !== 'none') parts.push(`(unread type ${type})`);
  }
  return { text: parts.join('\n'), types, keys: keys.length };
}

/** The places in `text` where any of `secrets` (or its distinctive middle) occurs, for a readable failure. */
export function leaks(text: string, secrets: Record<string, string>): string[] {
  const found: string[] = [];
  for (const [name, secret] of Object.entries(secrets)) {
    const middle = secret.slice(Math.floor(secret.length / 4), Math.floor(secret.length / 4) + 12);
    for (const needle of [secret, middle]) {
      const at = text.indexOf(needle);
      if (at >= 0) found.push(`${name} at ${at}: …${text.slice(Math.max(0, at - 80), at + needle.length + 20)}…`);
    }
  }
  return found;
}
