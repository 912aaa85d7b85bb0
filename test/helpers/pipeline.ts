/**
 * An end-to-end rig: a simulator on an ephemeral port, a fresh Redis prefix, the pipeline's environment at a
 * compressed time scale, a Runtime for the test's own calls, and `upscale worker` processes spawned for real.
 */
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { expect } from 'vitest';
import { loadConfig, type Config } from '../../src/config/index.js';
import type { ResultRecord } from '../../src/results/record.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { scaledPipelineEnv } from '../../src/sim/scaled-config.js';
import { startSimulator, type SimOptions, type Simulator } from '../../src/sim/index.js';
import { spawnUpscale, type Proc } from './processes.js';
import { deletePrefix, freshPrefix, testRedisUrl, waitFor } from './redis.js';

export interface Rig {
  sim: Simulator;
  env: Record<string, string>;
  config: Config;
  rt: Runtime;
  prefix: string;
  apiKey: string;
  workers: Proc[];
  /** Starts `upscale worker` and waits until its lanes are running. */
  startWorker(args?: string[], extraEnv?: Record<string, string>): Promise<Proc>;
  /** A sample image URL served by the simulator. */
  image(name: string, width?: number, height?: number, format?: 'png' | 'jpg' | 'webp'): string;
  stop(): Promise<void>;
}

export async function startRig(options: {
  timeScale: number;
  sim?: Partial<SimOptions>;
  env?: Record<string, string>;
}): Promise<Rig> {
  const prefix = freshPrefix('e2e');
  const apiKey = `sk-test-${randomBytes(8).toString('hex')}`;
  const redisUrl = testRedisUrl();
  const sim = await startSimulator({ apiKeys: [apiKey], timeScale: options.timeScale, seed: 7, ...options.sim });
  const env = {
    ...scaledPipelineEnv({ simUrl: sim.url, apiKey, timeScale: options.timeScale, redisUrl, prefix }),
    ...options.env,
  };
  const config = loadConfig({}, env);
  const rt = createRuntime(config, { log: pino({ level: 'silent' }) });
  const workers: Proc[] = [];
  return {
    sim,
    env,
    config,
    rt,
    prefix,
    apiKey,
    workers,
    async startWorker(args = [], extraEnv = {}) {
      const p = spawnUpscale(['worker', ...args], { ...env, ...extraEnv });
      workers.push(p);
      await waitFor(() => p.stderr().includes('workers started') || p.child.exitCode !== null, {
        timeoutMs: 30_000,
        what: 'worker start',
      });
      if (p.child.exitCode !== null) throw new Error(`worker exited ${p.child.exitCode}: ${p.stderr()}`);
      return p;
    },
    image(name, width = 64, height = 48, format = 'png') {
      return `${sim.url}/sim/images/${name}-${width}x${height}.${format}`;
    },
    async stop() {
      await Promise.all(workers.map((w) => w.stop('SIGKILL')));
      await rt.close();
      await sim.stop();
      await deletePrefix(redisUrl, prefix);
    },
  };
}

/** Waits until every image of the batch is in a terminal state; returns the summary. */
export async function waitForBatch(rt: Runtime, batchId: string, timeoutMs = 90_000) {
  return waitFor(
    async () => {
      const s = await rt.store.getSummary(batchId);
      return s && s.total > 0 && s.finishedAt !== null ? s : null;
    },
    { timeoutMs, intervalMs: 200, what: `batch ${batchId} to finish` },
  );
}

export const TOPAZ = 'topaz/image-upscale';

/** Every record of a batch, in the store's order. */
export async function batchRecords(rig: Pick<Rig, 'rt'>, batchId: string): Promise<ResultRecord[]> {
  const out: ResultRecord[] = [];
  for await (const r of rig.rt.store.records(batchId)) out.push(r);
  return out;
}

/** `n` topaz ×2 items on distinct simulator sample images (`<tag><i>`, 32..36 × 24 px). */
export function topazImages(rig: Pick<Rig, 'image'>, n: number, tag: string) {
  return Array.from({ length: n }, (_, i) => ({ input: rig.image(`${tag}${i}`, 32 + (i % 5), 24), model: TOPAZ, factor: '2' }));
}

/** Every input was created at most once, except those whose record admits an ambiguous submit. */
export function expectNoDoublePayment(rig: Pick<Rig, 'sim'>, recs: readonly ResultRecord[]): void {
  const byInput = new Map(recs.map((r) => [r.input, r]));
  for (const [input, creates] of Object.entries(rig.sim.stats().perInput)) {
    const r = byInput.get(input);
    if (creates > 1) expect(r?.ambiguousSubmits ?? 0, `${input} was created ${creates} times`).toBeGreaterThanOrEqual(creates - 1);
  }
}

/**
 * A call of "another process" holds one place of the createTask send window (src/worker/sliding-gate.ts) for `ms`
 * from now, as a call whose answer is slow would: with the window otherwise full, the next image to send waits at
 * the gate, its submit job running, until then.
 */
export async function holdSendPlace(rig: Pick<Rig, 'rt'>, ms: number): Promise<void> {
  await rig.rt.redis.zadd(rig.rt.store.keys.createGate, Date.now() + ms, `a-call-of-another-process-${randomBytes(4).toString('hex')}`);
}
