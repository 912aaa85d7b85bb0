import { afterEach, describe, expect, it } from 'vitest';
import { runUpscale, spawnUpscale, type Proc } from '../helpers/processes.js';
import { deletePrefix, freshPrefix, testRedisUrl, waitFor } from '../helpers/redis.js';
import { startRedisServer } from '../helpers/redis-server.js';

describe('upscale serve (a real process)', () => {
  let proc: Proc | undefined;
  let prefix: string | undefined;
  afterEach(async () => {
    await proc?.stop('SIGKILL');
    proc = undefined;
    if (prefix) await deletePrefix(testRedisUrl(), prefix);
  });

  const env = () => {
    prefix = freshPrefix('serve');
    return {
      REDIS_URL: testRedisUrl(),
      UPSCALE_PREFIX: prefix,
      KIE_API_KEY: 'sk-serve-test-key',
      LOG_LEVEL: 'info',
    };
  };

  async function listening(p: Proc): Promise<string> {
    const line = await waitFor(
      () =>
        /listening on (http:\/\/\S+)/.exec(p.stdout())?.[1] ?? (p.child.exitCode !== null ? 'exited' : null),
      {
        timeoutMs: 30_000,
        what: 'serve to listen',
      },
    );
    if (line === 'exited') throw new Error(`serve exited ${p.child.exitCode}: ${p.stderr()}`);
    return line;
  }

  it('listens on a free port, answers /healthz, and exits 0 on SIGTERM', async () => {
    proc = spawnUpscale(['serve', '--port', '0'], env());
    const url = await listening(proc);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ok: true, redis: 'up' });
    expect((await fetch(`${url}/metrics`)).status).toBe(200);
    const exit = await proc.stop('SIGTERM');
    expect(exit).toEqual({ code: 0, signal: null });
    expect(proc.stderr()).toContain('closing the server');
    expect(proc.stderr()).not.toContain('sk-serve-test-key');
  });

  it('exits 0 on SIGINT too, and serves only what is switched on', async () => {
    proc = spawnUpscale(['serve', '--port', '0', '--no-dashboard', '--no-metrics'], env());
    const url = await listening(proc);
    expect((await fetch(`${url}/metrics`)).status).toBe(404);
    expect((await fetch(`${url}/dashboard`)).status).toBe(404);
    expect((await fetch(`${url}/callbacks/kie/abc`, { method: 'POST', body: '{}' })).status).toBe(401);
    expect(await proc.stop('SIGINT')).toEqual({ code: 0, signal: null });
  });

  it('exits 0 within SHUTDOWN_TIMEOUT after SIGTERM even when its Redis is gone (a request waiting on Redis held it open for good)', async () => {
    const redis = await startRedisServer();
    try {
      proc = spawnUpscale(['serve', '--port', '0'], { ...env(), REDIS_URL: redis.url, SHUTDOWN_TIMEOUT: '2s' });
      const url = await listening(proc);
      await redis.stop('SIGKILL');
      // A request in flight that waits on Redis: closing the server waits for it, and it for a reconnect.
      const pending = fetch(`${url}/api/batches`).catch(() => null);
      await new Promise((r) => setTimeout(r, 300));
      const started = Date.now();
      expect(await proc.stop('SIGTERM')).toEqual({ code: 0, signal: null });
      expect(Date.now() - started).toBeLessThan(2000 + 8000);
      expect(proc.stderr()).toContain('closing the server');
      await pending;
    } finally {
      await redis.destroy();
    }
  });

  it('warns loudly when the dashboard is served without auth beyond loopback', async () => {
    proc = spawnUpscale(['serve', '--port', '0', '--host', '0.0.0.0'], env());
    await listening(proc);
    expect(proc.stderr()).toContain('DASHBOARD WITHOUT AUTHENTICATION');
    expect(await proc.stop('SIGTERM')).toEqual({ code: 0, signal: null });
  });

  it('refuses conflicting flags with exit 2 and a fix-it message', async () => {
    const r = await runUpscale(['serve', '--no-dashboard', '--dashboard-write'], env());
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--dashboard-write needs the dashboard');
  });
});
