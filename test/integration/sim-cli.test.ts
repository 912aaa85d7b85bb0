/**
 * `upscale sim` as a real process: prints the bound URL, serves the API with the key from --key or
 * KIE_API_KEY, stops cleanly (exit 0) on SIGTERM, and refuses bad flags (exit 2) naming the flag.
 */
import { describe, expect, it } from 'vitest';
import { simOptionsFromFlags, startLines, type SimFlags } from '../../src/cli/commands/sim.js';
import { simCall } from '../helpers/images.js';
import { runUpscale, spawnUpscale, type Proc } from '../helpers/processes.js';
import { waitFor } from '../helpers/redis.js';

const LISTENING = /simulator listening on (http:\/\/127\.0\.0\.1:\d+)/;

/** Runs `body` with a spawned `upscale` process, killed afterwards whatever happens. */
async function withProc(
  args: string[],
  env: Record<string, string>,
  body: (p: Proc) => Promise<void>,
): Promise<void> {
  const p = spawnUpscale(args, env);
  try {
    await body(p);
  } finally {
    await p.stop('SIGKILL');
  }
}

async function started(p: Proc): Promise<string> {
  const m = await waitFor(() => LISTENING.exec(p.stdout()) ?? (p.child.exitCode !== null ? 'exited' : null), {
    timeoutMs: 30_000,
    what: 'the listening line',
  });
  if (m === 'exited') throw new Error(`upscale sim exited: ${p.stderr()}`);
  return m[1]!;
}

// The processes start in parallel: each start costs a couple of seconds of tsx.
describe.concurrent('upscale sim', () => {
  it('prints the URL it listens on (and --public-url apart), serves the API with --key, and exits 0 on SIGTERM', async () => {
    const args = ['sim', '--port', '0', '--key', 'k', '--time-scale', '50', '--create-limit', '5/10s', '--dialect', 'docs', '--public-url', 'http://127.0.0.1:8893'];
    await withProc(args, { KIE_API_KEY: '' }, async (proc) => {
      const url = await started(proc);
      expect(url).not.toBe('http://127.0.0.1:8893'); // the listening address, not the public one
      expect(proc.stdout()).toContain(`KIE_BASE_URL=${url} KIE_UPLOAD_BASE_URL=${url}`);
      expect(proc.stdout()).toContain('public URL (in the result, upload and file URLs it hands out): http://127.0.0.1:8893');
      expect((await simCall(url, '/api/v1/chat/credit')).json).toEqual({
        code: 200,
        msg: 'success',
        data: 100000,
      });
      expect((await simCall(url, '/api/v1/chat/credit', { key: 'other' })).json.code).toBe(401);
      const stats = (await simCall(url, '/sim/stats')).json;
      expect(stats.createLimit).toEqual({ max: 5, durationMs: 200 });
      const { code, signal } = await proc.stop('SIGTERM');
      expect({ code, signal }).toEqual({ code: 0, signal: null });
      expect(proc.stderr()).toContain('stopped');
    });
  });

  it('with --public-url, prints the address it really listens on, and the public URL apart', () => {
    // The command, `upscale sim --port 8892 --public-url http://127.0.0.1:8893`, as the lines it prints:
    expect(startLines({ listenUrl: 'http://127.0.0.1:8892', url: 'http://127.0.0.1:8893' }, '127.0.0.1')).toEqual([
      'simulator listening on http://127.0.0.1:8892',
      'public URL (in the result, upload and file URLs it hands out): http://127.0.0.1:8893',
      'point workers at it: KIE_BASE_URL=http://127.0.0.1:8892 KIE_UPLOAD_BASE_URL=http://127.0.0.1:8892 (with the same KIE_API_KEY), or the public URL where workers reach the simulator through it',
      'sample inputs: http://127.0.0.1:8892/sim/images/<name>-<w>x<h>.<jpg|png|webp> (workers need ALLOW_PRIVATE_URLS=true for them)',
      'stats: http://127.0.0.1:8892/sim/stats   tasks: http://127.0.0.1:8892/sim/tasks   faults: POST http://127.0.0.1:8892/sim/control',
    ]);
    // As a process (the first test runs one with --public-url): the printed address answers, the public one is named.
  });

  it('takes the key from KIE_API_KEY', async () => {
    await withProc(['sim', '--port', '0', '--dialect', 'docs'], { KIE_API_KEY: 'env-key' }, async (proc) => {
      const url = await started(proc);
      expect((await simCall(url, '/api/v1/chat/credit', { key: 'env-key' })).json.code).toBe(200);
      expect((await proc.stop('SIGINT')).code).toBe(0);
    });
  });

  it('refuses to start without a key: exit 2 and a message saying what to do', async () => {
    const noKey = await runUpscale(['sim', '--port', '0'], { KIE_API_KEY: '' });
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toMatch(/--key KEY or set KIE_API_KEY/);
  });

  it('parses every flag, and names the flag and the reason of a bad value', () => {
    const flags = (extra: Partial<SimFlags> = {}): SimFlags => ({
      port: '0',
      host: '127.0.0.1',
      key: ['k'],
      timeScale: '1',
      createLimit: '20/10s',
      queryLimit: '10/1s',
      rateLimitStyle: 'envelope',
      errorStyle: 'envelope',
      latency: [],
      fault: [],
      ...extra,
    });
    expect(simOptionsFromFlags(flags({ latencyByInput: true }), {}).latencyByInput).toBe(true);
    expect(simOptionsFromFlags(flags(), {}).latencyByInput).toBeUndefined();
    const opts = simOptionsFromFlags(
      flags({
        timeScale: '20',
        createLimit: '5/2s',
        rateLimitStyle: 'http',
        failRate: '0.25',
        credits: '50',
        seed: '3',
        latency: ['topaz=10s/30s', 'recraft/crisp-upscale=2s/5s'],
        fault: ['serverErrorRate=0.1', 'maintenance=true', 'slowMs=2s'],
        resultTtl: '1h',
        light: true,
      }),
      { webhookHmacKey: 'hmac' },
    );
    expect(opts).toMatchObject({
      apiKeys: ['k'],
      timeScale: 20,
      createLimit: { max: 5, durationMs: 2000 },
      rateLimitStyle: 'http',
      failRate: 0.25,
      credits: 50,
      seed: 3,
      webhookHmacKey: 'hmac',
      resultTtlMs: 3_600_000,
      light: true,
      latency: {
        'topaz/image-upscale': { medianMs: 10_000, p95Ms: 30_000 },
        'recraft/crisp-upscale': { medianMs: 2000, p95Ms: 5000 },
      },
      faults: { serverErrorRate: 0.1, maintenance: true, slowMs: 2000 },
    });
    expect(simOptionsFromFlags(flags({ key: [] }), { apiKey: 'from-env' }).apiKeys).toEqual(['from-env']);
    expect(simOptionsFromFlags(flags(), {}).light).toBeUndefined();
    const cases: [Partial<SimFlags>, RegExp][] = [
      [{ key: [] }, /pass --key KEY or set KIE_API_KEY/],
      [{ timeScale: 'fast' }, /--time-scale "fast" is not a number/],
      [{ createLimit: '20 per 10s' }, /--create-limit "20 per 10s" is not a rate limit/],
      [{ queryLimit: '10/0s' }, /--query-limit "10\/0s": the window "0s" is zero/],
      [{ rateLimitStyle: 'loud' }, /--rate-limit-style "loud" must be http or envelope/],
      [{ failRate: '1.5' }, /--fail-rate "1.5" must be from 0 to 1/],
      [{ credits: '-1' }, /--credits "-1" must be at least 0/],
      [{ seed: '1.5' }, /--seed "1.5" must be a whole number/],
      [{ latency: ['topaz=20s'] }, /--latency "topaz=20s" must look like MODEL=MEDIAN\/P95/],
      [{ latency: ['flux=1s/2s'] }, /unknown model "flux"/],
      [{ latency: ['topaz=20s/10s'] }, /the p95 must not be shorter than the median/],
      [{ fault: ['slowRate=2'] }, /--fault slowRate "2" must be from 0 to 1/],
      [{ fault: ['gremlins=1'] }, /--fault "gremlins=1" must be NAME=VALUE/],
      [{ port: '70000' }, /--port "70000" must be from 0 to 65535/],
      [{ publicUrl: 'example.com' }, /--public-url "example.com" must be an http\(s\) URL/],
    ];
    for (const [extra, message] of cases) {
      expect(() => simOptionsFromFlags(flags(extra), {}), JSON.stringify(extra)).toThrow(message);
    }
  });

  it('parses the live-dialect flags: --dialect, --daily-limit, --retry-after, --odd-states', () => {
    const base: SimFlags = { port: '0', host: '127.0.0.1', key: ['k'], timeScale: '1', createLimit: '20/10s', queryLimit: '10/1s', rateLimitStyle: 'envelope', errorStyle: 'envelope', latency: [], fault: [] };
    expect(simOptionsFromFlags(base, {}).dialect).toBe('live');
    expect(simOptionsFromFlags({ ...base, dialect: 'docs', dailyLimit: '10', retryAfter: '120', oddStates: '0.3' }, {})).toMatchObject({ dialect: 'docs', dailyLimit: 10, retryAfter: 120, oddStates: 0.3 });
    expect(simOptionsFromFlags({ ...base, retryAfter: '2m' }, {}).retryAfter).toBe(120);
    expect(simOptionsFromFlags({ ...base, retryAfter: '=soon' }, {}).retryAfter).toBe('soon');
    const cases: [Partial<SimFlags>, RegExp][] = [
      [{ dialect: 'ancient' }, /--dialect "ancient" must be live or docs/],
      [{ dailyLimit: '-1' }, /--daily-limit "-1" must be from 0/],
      [{ dailyLimit: '2.5' }, /--daily-limit "2.5" must be a whole number/],
      [{ retryAfter: 'soon' }, /--retry-after "soon"/],
      [{ oddStates: '2' }, /--odd-states "2" must be from 0 to 1/],
    ];
    for (const [extra, message] of cases) {
      expect(() => simOptionsFromFlags({ ...base, ...extra }, {}), JSON.stringify(extra)).toThrow(message);
    }
  });
});
