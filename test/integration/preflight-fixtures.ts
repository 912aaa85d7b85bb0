/**
 * An in-process rig for the pre-flight, upload, budget and download tests: a simulator, a fresh prefix, the scaled
 * pipeline environment (plus OUTPUT_DIR in a temp folder), and the lanes started in this process with
 * `startWorkers` (cheaper than spawning workers on a two-core machine). Images are enqueued straight into the
 * results store and the submit queue, as the producer does, so these tests depend only on the worker.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { loadConfig } from '../../src/config/index.js';
import type { Factor, ModelName } from '../../src/kie/models.js';
import { imageJobId, submitJobId } from '../../src/queue/identity.js';
import type { SubmitJobData } from '../../src/queue/job-data.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { scaledPipelineEnv } from '../../src/sim/scaled-config.js';
import { startSimulator, type SimOptions, type Simulator } from '../../src/sim/index.js';
import { startWorkers, type WorkerHandle, type WorkerOptions } from '../../src/worker/index.js';
import { afterEach } from 'vitest';
import { startKieProxy, type KieProxy } from '../helpers/kie-proxy.js';
import { deletePrefix, freshPrefix, testRedisUrl, waitFor } from '../helpers/redis.js';

export interface LocalRig {
  sim: Simulator;
  rt: Runtime;
  env: Record<string, string>;
  outputDir: string;
  workers: WorkerHandle | null;
  start(options?: WorkerOptions): Promise<WorkerHandle>;
  image(name: string, width?: number, height?: number, format?: 'png' | 'jpg' | 'webp'): string;
  stop(): Promise<void>;
}

export async function startLocalRig(
  options: {
    timeScale?: number;
    env?: Record<string, string>;
    sim?: Partial<SimOptions>;
    /** Puts something between the workers and the simulator: gets the simulator's URL, resolves the API base URL to use. */
    kieProxy?: (simUrl: string) => Promise<string>;
    /** The runtime's logger. @defaultValue silent */
    log?: Logger;
  } = {},
): Promise<LocalRig> {
  const timeScale = options.timeScale ?? 50;
  const prefix = freshPrefix('pf');
  const apiKey = `sk-test-${randomBytes(6).toString('hex')}`;
  const redisUrl = testRedisUrl();
  const outputDir = await mkdtemp(join(tmpdir(), 'upscale-out-'));
  const sim = await startSimulator({ apiKeys: [apiKey], timeScale, seed: 3, ...options.sim });
  const env = {
    ...scaledPipelineEnv({ simUrl: sim.url, apiKey, timeScale, redisUrl, prefix }),
    OUTPUT_DIR: outputDir,
    ...options.env,
    ...(options.kieProxy ? { KIE_BASE_URL: await options.kieProxy(sim.url) } : {}),
  };
  const rt = createRuntime(loadConfig({}, env), { log: options.log ?? pino({ level: 'silent' }) });
  const rig: LocalRig = {
    sim,
    rt,
    env,
    outputDir,
    workers: null,
    async start(workerOptions = {}) {
      rig.workers = await startWorkers(rt, { concurrency: 8, ...workerOptions });
      return rig.workers;
    },
    image: (name, width = 64, height = 48, format = 'png') => `${sim.url}/sim/images/${name}-${width}x${height}.${format}`,
    async stop() {
      await rig.workers?.close(3000);
      await rt.close();
      await sim.stop();
      await deletePrefix(redisUrl, prefix);
      await rm(outputDir, { recursive: true, force: true });
    },
  };
  return rig;
}

/**
 * Rigs for the tests of one file or describe block, each stopped (with its kie proxy) after its test. Call at the
 * top of a describe block (it registers an afterEach).
 */
export function localRigs(): {
  start(options?: Parameters<typeof startLocalRig>[0]): Promise<LocalRig>;
  /** A rig whose workers reach the simulator through a kie proxy (test/helpers/kie-proxy.ts) the test can steer. */
  startProxied(options?: Omit<NonNullable<Parameters<typeof startLocalRig>[0]>, 'kieProxy'>): Promise<{ rig: LocalRig; proxy: KieProxy }>;
} {
  let rig: LocalRig | undefined;
  let proxy: KieProxy | undefined;
  afterEach(async () => {
    proxy?.releaseAll(); // answers a test still held would keep the rig's workers waiting
    await rig?.stop();
    await proxy?.close();
    rig = undefined;
    proxy = undefined;
  });
  return {
    async start(options = {}) {
      rig = await startLocalRig(options);
      return rig;
    },
    async startProxied(options = {}) {
      const started = await startLocalRig({ ...options, kieProxy: async (simUrl) => (proxy = await startKieProxy(simUrl)).url });
      rig = started;
      return { rig: started, proxy: proxy as KieProxy };
    },
  };
}

export interface Item {
  input: string;
  model?: ModelName;
  factor?: Factor | null;
}

/** Enqueues images as the producer does (records, then submit jobs). Returns their job ids in order. */
export async function enqueueDirect(rt: Runtime, batchId: string, items: Item[]): Promise<string[]> {
  const images = items.map((i) => {
    const model = i.model ?? 'topaz/image-upscale';
    const factor = i.factor === undefined ? (model === 'topaz/image-upscale' ? '2' : null) : i.factor;
    return { jobId: imageJobId(batchId, model, factor, i.input), input: i.input, model, factor };
  });
  await rt.store.createRecords(batchId, images);
  await rt.queues.submit.addBulk(
    images.map((img) => {
      const data: SubmitJobData = { ...img, batchId, generation: 0 };
      return { name: 'submit', data, opts: { jobId: submitJobId(img.jobId, 0) } };
    }),
  );
  return images.map((i) => i.jobId);
}

/** Waits until every record of the batch is terminal (and, with `downloads`, every success has its outcome). */
export async function waitForRecords(rt: Runtime, batchId: string, opts: { downloads?: boolean; timeoutMs?: number } = {}) {
  return waitFor(
    async () => {
      const records = [];
      for await (const r of rt.store.records(batchId)) records.push(r);
      const done = records.every((r) => ['succeeded', 'failed', 'timed_out', 'cancelled'].includes(r.state));
      const downloaded = !opts.downloads || records.every((r) => r.state !== 'succeeded' || r.outputUrl !== null || r.failMsg !== null);
      return records.length > 0 && done && downloaded ? records : null;
    },
    { timeoutMs: opts.timeoutMs ?? 60_000, intervalMs: 100, what: `batch ${batchId} to finish` },
  );
}
