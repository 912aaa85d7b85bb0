/**
 * Finds the Redis the tests use: `REDIS_URL`, else 127.0.0.1:6379, else a private `redis-server` from PATH on a
 * free loopback port, else (only when a Docker engine answers) a testcontainers Redis. Otherwise it fails with a
 * message that says how to get one.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Starts a throw-away `redis-server` (nothing on disk) when one is on PATH. */
async function privateRedisServer(): Promise<TestRedis | null> {
  if (spawnSync('redis-server', ['--version']).status !== 0) return null;
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'upscale-test-redis-'));
  const child = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--dir', dir], {
    stdio: 'ignore',
  });
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 100 && !(await pingRedis(url, 200)); i++) await new Promise((r) => setTimeout(r, 50));
  const stop = async () => {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  };
  if (!(await pingRedis(url))) {
    await stop();
    return null;
  }
  return { url, stop };
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
