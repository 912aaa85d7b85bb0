import { afterEach, describe, expect, it, vi } from 'vitest';
import { MaxRetriesPerRequestError } from 'ioredis/built/errors/index.js';
import { buildProgram, main, redisUnreachable } from '../../src/cli/index.js';

describe('upscale CLI', () => {
  afterEach(() => {
    process.exitCode = undefined;
    vi.restoreAllMocks();
  });

  it('lists every command of the contract', () => {
    const names = buildProgram().commands.map((c) => c.name());
    for (const name of ['enqueue', 'worker', 'serve', 'status', 'export', 'sim', 'pause', 'resume', 'retry', 'cancel']) {
      expect(names).toContain(name);
    }
  });

  it('exits 2 on an unknown flag, so it is never mistaken for "some lines rejected" (1)', async () => {
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    await main(['node', 'upscale', 'enqueue', '--bogus']);
    expect(process.exitCode).toBe(2);
  });

  it("commander's own refusals read like every usage error: `upscale: …`, not `error: …`", async () => {
    const written: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((s) => written.push(String(s)) > 0);
    await main(['node', 'upscale', 'priority', '--batch', 'b1', 'extreme']);
    await main(['node', 'upscale', 'pause', '--batch']);
    expect(written.filter((w) => /^(upscale|error):/.test(w))).toEqual([
      expect.stringMatching(/^upscale: command-argument value 'extreme' is invalid for argument 'level'\. Allowed choices are urgent, high, normal, low\./),
      expect.stringMatching(/^upscale: option '--batch <id>' argument missing/),
    ]);
    expect(process.exitCode).toBe(2);
  });

  it('exits 2 with every problem listed on a bad environment', async () => {
    const errors: string[] = [];
    vi.spyOn(console, 'error').mockImplementation((m: string) => void errors.push(m));
    const saved = process.env.KIE_CREATE_LIMIT;
    process.env.KIE_CREATE_LIMIT = 'abc';
    try {
      await main(['node', 'upscale', 'status', '--json']);
    } finally {
      if (saved === undefined) delete process.env.KIE_CREATE_LIMIT;
      else process.env.KIE_CREATE_LIMIT = saved;
    }
    expect(process.exitCode).toBe(2);
    expect(errors.join('\n')).toMatch(/KIE_CREATE_LIMIT: "abc" is not a rate limit/);
  });

  it('exits 0 for --help', async () => {
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    await main(['node', 'upscale', '--help']);
    expect(process.exitCode).toBe(0);
  });
});

describe('a Redis that does not answer', () => {
  it('is named, without its password, with what to do (was ioredis\' "Reached the max retries per request limit")', () => {
    const given = new MaxRetriesPerRequestError(3);
    expect(redisUnreachable(given, { REDIS_URL: 'redis://u:secret@127.0.0.1:6399' })).toBe(
      'Redis at redis://***@127.0.0.1:6399 did not answer (3 tries); start it, or point REDIS_URL (or REDIS_CLUSTER_NODES) at a running one',
    );
    expect(redisUnreachable(given, {})).toMatch(/^Redis at redis:\/\/127\.0\.0\.1:6379 did not answer/);
    expect(redisUnreachable(given, { REDIS_CLUSTER_NODES: 'a:7000,b:7001' })).toMatch(/^the Redis Cluster at a:7000,b:7001 did not answer/);
    expect(redisUnreachable(new Error('no batch named x'), {})).toBeNull();
  });
});
