/**
 * A password-protected Redis (a private `redis-server --requirepass`, the password full of URL-special characters):
 * a worker process with `REDIS_URL=redis://:<percent-encoded password>@127.0.0.1:PORT` takes a batch through, the
 * CLI reads it, a wrong or missing password fails fast with Redis' reason, and the password shows in no output.
 */
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { enqueue } from '../../src/producer/index.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { scaledPipelineEnv } from '../../src/sim/scaled-config.js';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { waitForBatch } from '../helpers/pipeline.js';
import { runUpscale, spawnUpscale, type Proc } from '../helpers/processes.js';
import { waitFor } from '../helpers/redis.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';

const PASSWORD = `p@ss:w/rd#${randomBytes(8).toString('hex')}?&%`;

describe('Redis with a password (requirepass)', () => {
  let redis: RedisServer;
  let sim: Simulator;
  let rt: Runtime;
  let worker: Proc | undefined;
  let env: Record<string, string>;
  const outputs: string[] = [];

  beforeAll(async () => {
    redis = await startRedisServer({ password: PASSWORD });
    const apiKey = `sk-${randomBytes(8).toString('hex')}`;
    sim = await startSimulator({ apiKeys: [apiKey], timeScale: 20 });
    env = scaledPipelineEnv({ simUrl: sim.url, apiKey, timeScale: 20, redisUrl: redis.url, prefix: 'auth' });
    rt = createRuntime(loadConfig({}, env), { log: pino({ level: 'silent' }) });
  }, 60_000);

  afterAll(async () => {
    await worker?.stop('SIGKILL');
    await rt?.close();
    await sim?.stop();
    await redis?.destroy();
  });

  it('the URL carries the password percent-encoded, and the server refuses anyone without it', async () => {
    expect(redis.url).toContain(encodeURIComponent(PASSWORD));
    expect(redis.url).not.toContain(PASSWORD);
    expect(await rt.redis.ping()).toBe('PONG');
    await expect(redis.cli('--no-auth-warning', '-a', 'wrong', 'ping')).resolves.toMatch(/WRONGPASS|NOAUTH/);
  });

  it('a worker process takes a batch through with redis://:password@host', async () => {
    worker = spawnUpscale(['worker'], env);
    await waitFor(() => worker!.stderr().includes('workers started') || worker!.child.exitCode !== null, { timeoutMs: 30_000, what: 'worker start' });
    expect(worker.child.exitCode, worker.stderr()).toBeNull();
    const items = Array.from({ length: 12 }, (_, i) => ({ input: `${sim.url}/sim/images/auth${i}-40x30.png`, model: 'topaz/image-upscale' }));
    await enqueue(rt, items, { batchId: 'auth' });
    const summary = await waitForBatch(rt, 'auth', 60_000);
    expect(summary.counts.succeeded).toBe(12);
    expect(sim.stats().createAccepted).toBe(12);
    const status = await runUpscale(['status', '--batch', 'auth', '--json'], env);
    outputs.push(status.stdout + status.stderr);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ total: 12, counts: { succeeded: 12 } });
    expect(await worker.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    outputs.push(worker.stdout() + worker.stderr());
  });

  it.each([
    ['a wrong password', 'redis://:not-the-password@127.0.0.1'],
    ['no password', 'redis://127.0.0.1'],
  ])('with %s a command fails fast with the reason, and shows no password', async (_name, base) => {
    const t0 = Date.now();
    const r = await runUpscale(['status', '--json'], { ...env, REDIS_URL: `${base}:${redis.port}` });
    outputs.push(r.stdout + r.stderr);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/WRONGPASS|NOAUTH|invalid username-password|Authentication required/i);
    expect(r.stderr).not.toContain('not-the-password');
    expect(Date.now() - t0).toBeLessThan(30_000);
  });

  it('the password appears in no output', () => {
    const text = outputs.join('\n');
    expect(text.length).toBeGreaterThan(100);
    for (const needle of [PASSWORD, encodeURIComponent(PASSWORD), PASSWORD.slice(10, 26)]) expect(text).not.toContain(needle);
  });
});
