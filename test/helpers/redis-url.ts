/**
 * Finds the Redis the tests use: `REDIS_URL`, else 127.0.0.1:6379, else a private `redis-server` from PATH on a
 * free loopback port, else (only when a Docker engine answers) a testcontainers Redis. Otherwise it fails with a
 * message that says how to get one.
 */
import { existsSync } from 'node:fs';
import { onPath, pingRedis, startRedisServer } from '../../src/demo/redis.js';

export { pingRedis } from '../../src/demo/redis.js';

function dockerReachable(): boolean {
  const host = process.env.DOCKER_HOST;
  return Boolean(host) || existsSync('/var/run/docker.sock');
}

export interface TestRedis {
  url: string;
  stop(): Promise<void>;
}

/** Starts a throw-away `redis-server` (nothing on disk) when one is on PATH. */
async function privateRedisServer(): Promise<TestRedis | null> {
  const binary = await onPath('redis-server', process.env.PATH);
  if (!binary) return null;
  try {
    return await startRedisServer(binary);
  } catch {
    return null;
  }
}

export async function resolveTestRedis(): Promise<TestRedis> {
  const candidates = [process.env.REDIS_URL, 'redis://127.0.0.1:6379'].filter((u): u is string => Boolean(u));
  for (const url of candidates) {
    if (await pingRedis(url)) return { url, stop: () => Promise.resolve() };
  }
  const own = await privateRedisServer();
  if (own) return own;
  if (dockerReachable()) {
    try {
      const { RedisContainer } = await import('@testcontainers/redis');
      const container = await new RedisContainer('redis:7-alpine').start();
      return { url: container.getConnectionUrl(), stop: async () => void (await container.stop()) };
    } catch (e) {
      throw new Error(`No Redis at ${candidates.join(' or ')}, and testcontainers could not start one: ${String(e)}`);
    }
  }
  throw new Error(
    `The tests need Redis 7: none answers at ${candidates.join(' or ')}, no redis-server is on PATH, and no Docker engine is reachable.\n` +
      'Install one (apt-get install redis-server) or start one with: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no\n' +
      '(or set REDIS_URL to a Redis you may write to).',
  );
}
