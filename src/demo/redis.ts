/**
 * The demo's Redis: REDIS_URL when set (it must answer), else 127.0.0.1:6379, else a `redis-server` found on PATH,
 * started on a free loopback port with no persistence (`--save "" --appendonly no`) in a temp folder and stopped
 * at the end. Without any of them the error says how to get one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { Redis } from 'ioredis';

export class DemoSetupError extends Error {
  override readonly name = 'DemoSetupError';
}

export interface DemoRedis {
  url: string;
  /** How it was found, for the console. */
  how: string;
  stop(): Promise<void>;
}

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

/** A free TCP port on 127.0.0.1 (bound, read, released). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export async function onPath(name: string, path: string | undefined): Promise<string | null> {
  for (const dir of (path ?? '').split(delimiter).filter(Boolean)) {
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/** Starts a throw-away `redis-server` (nothing on disk, noeviction) on a free loopback port; `stop()` removes it. */
export async function startRedisServer(binary: string): Promise<DemoRedis> {
  const dir = await mkdtemp(join(tmpdir(), 'upscale-demo-redis-'));
  const port = await freePort();
  const child: ChildProcess = spawn(
    binary,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--maxmemory-policy', 'noeviction'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `redis://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 10_000;
  while (!(await pingRedis(url, 500))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new DemoSetupError(`redis-server (${binary}) did not start: ${stderr.trim() || 'no answer within 10 s'}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, how: `started ${binary} on port ${port} (no persistence; stopped at the end)`, stop };
}

const HOW_TO = [
  'The demo needs Redis 7 and found none:',
  '  - install it: `apt-get install redis-server` (Debian/Ubuntu) or `brew install redis`, then run `npm run demo` again',
  '    (the demo starts its own redis-server when one is on PATH), or',
  '  - point to one: `REDIS_URL=redis://HOST:6379 npm run demo`, or start one in Docker:',
  '    `docker run --rm -p 6379:6379 redis:7`.',
].join('\n');

/**
 * Finds (or starts) a Redis for the demo. `env` gives REDIS_URL and PATH; `localUrl` is the usual local Redis.
 * @param localUrl @defaultValue `redis://127.0.0.1:6379`
 */
export async function findRedis(
  env: { REDIS_URL?: string | undefined; PATH?: string | undefined },
  localUrl = 'redis://127.0.0.1:6379',
): Promise<DemoRedis> {
  const none = () => Promise.resolve();
  const given = env.REDIS_URL?.trim();
  if (given) {
    if (await pingRedis(given)) return { url: given, how: 'REDIS_URL', stop: none };
    throw new DemoSetupError(`REDIS_URL=${given} does not answer. Start that Redis, or unset REDIS_URL to let the demo find one.`);
  }
  if (await pingRedis(localUrl)) return { url: localUrl, how: `found at ${localUrl}`, stop: none };
  const binary = await onPath('redis-server', env.PATH);
  if (binary) return startRedisServer(binary);
  throw new DemoSetupError(HOW_TO);
}
