/**
 * An end-to-end rig: a simulator on an ephemeral port, a fresh Redis prefix, the pipeline's environment at a
 * compressed time scale, a Runtime for the test's own calls, and `upscale worker` processes spawned for real.
 */
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { loadConfig, type Config } from '../../src/config/index.js';
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
