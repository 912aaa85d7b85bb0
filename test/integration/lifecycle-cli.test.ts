/** `upscale enqueue --deadline/--pilot` and `upscale approve` as real processes; the simulator's slow drain. */
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { register as registerApprove } from '../../src/cli/commands/approve.js';
import { register as registerEnqueue } from '../../src/cli/commands/enqueue.js';
import { simOptionsFromFlags, type SimFlags } from '../../src/cli/commands/sim.js';
import { UsageError } from '../../src/cli/usage-error.js';
import { startSimulator } from '../../src/sim/index.js';
import { runUpscale } from '../helpers/processes.js';
import { deletePrefix, freshPrefix, testRedisUrl, waitFor } from '../helpers/redis.js';

let prefix: string;
let env: Record<string, string>;
beforeAll(() => {
  prefix = freshPrefix('lc');
  env = { REDIS_URL: testRedisUrl(), UPSCALE_PREFIX: prefix, KIE_CREATE_LIMIT: '20/10s', ALLOW_PRIVATE_URLS: 'true' };
});
afterAll(() => deletePrefix(testRedisUrl(), prefix));

async function usageError(...args: string[]): Promise<string> {
  const p = new Command('upscale').exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  registerEnqueue(p);
  registerApprove(p);
  try {
    await p.parseAsync(args, { from: 'user' });
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error(`upscale ${args.join(' ')} did not fail`);
}

const urls = (n: number) => Array.from({ length: n }, (_, i) => ['--url', `https://images.example/p${i}.png`]).flat();

describe('lifecycle commands', () => {
  it('refuses bad --deadline and --pilot values by name', async () => {
    expect(await usageError('enqueue', '--url', 'https://x.example/a.png', '--model', 'topaz/image-upscale', '--deadline', 'tomorrow')).toMatch(/--deadline "tomorrow" is neither a duration/);
    expect(await usageError('enqueue', '--url', 'https://x.example/a.png', '--model', 'topaz/image-upscale', '--deadline', '2020-01-01T00:00Z')).toMatch(/in the past/);
    expect(await usageError('enqueue', '--url', 'https://x.example/a.png', '--model', 'topaz/image-upscale', '--pilot', '0')).toMatch(/--pilot "0" must be a whole number of images ≥ 1/);
    expect(await usageError('enqueue', '--url', 'https://x.example/a.png', '--model', 'topaz/image-upscale', '--pilot', 'some')).toMatch(/--pilot "some"/);
    expect(await usageError('approve')).toContain('upscale approve --batch ID');
  });

  it('enqueue warns when the window cannot fit, holds all but the pilot, and approve releases the rest', async () => {
    const r = await runUpscale(['enqueue', ...urls(200), '--model', 'topaz/image-upscale', '--batch', 'lc-1', '--deadline', '60s', '--pilot', '3', '--json'], env);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { enqueued: number; pilot: number; deadlineAt: number; batchWarnings: string[] };
    expect(out).toMatchObject({ enqueued: 200, pilot: 3 });
    // 200 images at 20 per 10 s need 100 s; the window is at most 60 s: 80 or more would expire.
    expect(out.batchWarnings).toHaveLength(1);
    expect(out.batchWarnings[0]).toMatch(/^the deadline cannot fit: 200 images need about 1m40s at 20 per 10s \(with no other batch waiting\), and the deadline is in [\dm.]+s: about (8\d|9\d|1\d\d) images would expire$/);
    const status = await runUpscale(['status', '--batch', 'lc-1', '--json'], env);
    const s = JSON.parse(status.stdout) as { counts: Record<string, number>; pilot: { images: number }; deadlineAt: number };
    expect(s.counts).toMatchObject({ waiting: 3, held: 197 });
    expect(s.pilot.images).toBe(3);
    expect(s.deadlineAt).toBe(out.deadlineAt);
    const a = await runUpscale(['approve', '--batch', 'lc-1'], env);
    expect(a.stdout).toContain('197 held images released');
    const none = await runUpscale(['approve', '--batch', 'nope-1'], env);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('no batch named nope-1');
    const plain = await runUpscale(['enqueue', '--url', 'https://images.example/q.png', '--model', 'topaz/image-upscale', '--batch', 'lc-2'], env);
    expect(plain.code).toBe(0);
    const noPilot = await runUpscale(['approve', '--batch', 'lc-2'], env);
    expect(noPilot.code).toBe(1);
    expect(noPilot.stderr).toContain('has no pilot');
  }, 180_000);

  it('the trial: 100 images of another batch queued; a 10-image batch and a 1-image urgent one with --deadline 30s are not warned', async () => {
    const own = { ...env, UPSCALE_PREFIX: freshPrefix('lc-fair') };
    try {
      const bulk = await runUpscale(['enqueue', ...urls(100), '--model', 'topaz/image-upscale', '--batch', 'bulk', '--json'], own);
      expect(bulk.code, bulk.stderr).toBe(0);
      const small = await runUpscale(['enqueue', ...urls(10), '--model', 'topaz/image-upscale', '--batch', 'small', '--deadline', '30s', '--json'], own);
      expect(JSON.parse(small.stdout)).not.toHaveProperty('batchWarnings');
      const rush = await runUpscale(['enqueue', '--url', 'https://images.example/rush.png', '--model', 'topaz/image-upscale', '--batch', 'rush', '--priority', 'urgent', '--deadline', '30s'], own);
      expect(rush.code, rush.stderr).toBe(0);
      expect(rush.stderr).not.toContain('warning');
      // A window the share cannot hold is still warned, naming the share: 10 low images beside 100 high ones get
      // 1/5 of the budget (0.4 per second). The others: bulk's 98 not yet admitted (2 are), small's 10, rush's 1 and
      // bulk-high's 100.
      const high = await runUpscale(['enqueue', ...urls(100).map((u) => u.replace('/p', '/h')), '--model', 'topaz/image-upscale', '--batch', 'bulk-high', '--priority', 'high'], own);
      expect(high.code, high.stderr).toBe(0);
      const low = await runUpscale(['enqueue', ...urls(10).map((u) => u.replace('/p', '/l')), '--model', 'topaz/image-upscale', '--batch', 'late-low', '--priority', 'low', '--deadline', '10s'], own);
      expect(low.stderr).toMatch(/warning: the deadline cannot fit: 10 images need about [\dm.]+s at 20 per 10s \(sharing it with 4 other batches of 2\d\d images; this one at priority low, weights high 4 : normal 2 : low 1, urgent first; after \d+ images? already admitted\), and the deadline is in [\d.]+s: about \d+ images? would expire/);
    } finally {
      await deletePrefix(testRedisUrl(), own.UPSCALE_PREFIX);
    }
  }, 180_000);

  it('the simulator drains its balance slowly when asked (other spending on the account)', async () => {
    const sim = await startSimulator({ apiKeys: ['k'], timeScale: 10, creditDrain: 50, credits: 1_000_000 });
    try {
      const read = async () => ((await (await fetch(`${sim.url}/api/v1/chat/credit`, { headers: { authorization: 'Bearer k' } })).json()) as { data: number }).data;
      const first = await read();
      await waitFor(async () => (await read()) < first - 50, { what: 'the balance to drain' });
      expect(sim.stats().creditChecks).toBeGreaterThan(1);
    } finally {
      await sim.stop();
    }
  });

  it('the drain is set from the command line (--credit-drain) and at run time (POST /sim/control creditDrain), as the README says', async () => {
    const base: SimFlags = { port: '0', host: '127.0.0.1', key: ['k'], timeScale: '1', createLimit: '20/10s', queryLimit: '10/1s', rateLimitStyle: 'envelope', errorStyle: 'envelope', latency: [], fault: [] };
    expect(simOptionsFromFlags({ ...base, creditDrain: '2.5' }, {}).creditDrain).toBe(2.5);
    expect(() => simOptionsFromFlags({ ...base, creditDrain: '-1' }, {})).toThrow(/--credit-drain "-1" must be at least 0/);
    expect(() => simOptionsFromFlags({ ...base, creditDrain: 'lots' }, {})).toThrow(/--credit-drain "lots" is not a number/);
    const sim = await startSimulator({ apiKeys: ['k'], timeScale: 10, credits: 1_000_000 });
    try {
      const control = async (body: unknown) => {
        const res = await fetch(`${sim.url}/sim/control`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
        return { status: res.status, json: (await res.json()) as { creditDrain?: number; credits?: number; error?: string } };
      };
      expect((await control({})).json.creditDrain).toBe(0);
      expect((await control({ creditDrain: -5 })).json).toMatchObject({ error: 'creditDrain must be a number of at least 0 (credits per simulated second)' });
      const set = await control({ creditDrain: 50 });
      expect(set).toMatchObject({ status: 200, json: { creditDrain: 50 } });
      const first = sim.stats().credits;
      await waitFor(() => sim.stats().credits < first - 50, { what: 'the balance to drain after creditDrain was set' });
      await control({ creditDrain: 0 });
      const stopped = sim.stats().credits;
      await new Promise((r) => setTimeout(r, 200));
      expect(sim.stats().credits).toBe(stopped);
    } finally {
      await sim.stop();
    }
  });
});
