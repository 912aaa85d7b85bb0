/**
 * Finds the Redis the tests use: `REDIS_URL`, else 127.0.0.1:6379, else (only when a Docker engine answers)
 * a testcontainers Redis. Otherwise it fails with a message that says how to start one.
 */
import { existsSync } from 'node:fs';
import { Redis } from 'ioredis';

export async function pingRedis(url: string, timeoutMs = 1500): Promise<boolean> {
  const client = new Redis(url, { lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

function dockerReachable(): boolean {
  const host = process.env.DOCKER_HOST;
  return Boolean(host) || existsSync('/var/run/docker.sock');
}

export interface TestRedis {
  url: string;
  stop(): Promise<void>;
}

export async function resolveTestRedis(): Promise<TestRedis> {
  const candidates = [process.env.REDIS_URL, 'redis://127.0.0.1:6379'].filter((u): u is string => Boolean(u));
  for (const url of candidates) {
    if (await pingRedis(url)) return { url, stop: () => Promise.resolve() };
  }
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
    `The tests need Redis 7 and none answers at ${candidates.join(' or ')}, and no Docker engine is reachable.\n` +
      'Start one with: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no\n' +
      '(or set REDIS_URL to a Redis you may write to).',
  );
}
