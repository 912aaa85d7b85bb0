/**
 * Our pipeline as a user runs it, for a benchmark: a simulator (in this process, port 0), a fresh Redis prefix,
 * the environment of `scaledPipelineEnv`, optionally `upscale serve` for callbacks, and `upscale worker` processes.
 * `stop()` stops every process, the simulator, and deletes the prefix's keys.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/index.js';
import { enqueue } from '../../src/producer/index.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { startSimulator, type SimOptions, type Simulator } from '../../src/sim/index.js';
import { scaledPipelineEnv } from '../../src/sim/scaled-config.js';
import { spawnUpscale, stopAll, type Proc } from './procs.js';
import { deletePrefix, freshPrefix, REDIS_URL } from './redis.js';
import { log, waitFor } from './report.js';
import { onInterrupt } from './interrupt.js';

export interface Image {
  url: string;
  model: 'topaz/image-upscale' | 'recraft/crisp-upscale';
  factor?: string;
}

/**
 * `count` inputs served by the simulator. The query string makes each URL (and so each image id) unique while the
 * simulator renders and caches one small picture.
 */
export function sampleImages(simUrl: string, count: number, mix: (i: number) => Image['model'] = () => 'topaz/image-upscale'): Image[] {
  return Array.from({ length: count }, (_, i) => {
    const model = mix(i);
    return { url: `${simUrl}/sim/images/bench-32x24.png?i=${i}`, model, ...(model === 'topaz/image-upscale' ? { factor: '2' } : {}) };
  });
}

export interface Rig {
  sim: Simulator;
  env: Record<string, string>;
  rt: Runtime;
  prefix: string;
  apiKey: string;
  tmp: string;
  reportFile: string;
  workers: Proc[];
  server: Proc | null;
  startServer(): Promise<string>;
  startWorkers(count: number, args?: string[], extraEnv?: Record<string, string>): Promise<Proc[]>;
  enqueue(images: readonly Image[], batchId: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startRig(o: {
  label: string;
  timeScale: number;
  sim: Omit<SimOptions, 'apiKeys' | 'timeScale'>;
  env?: Record<string, string>;
}): Promise<Rig> {
  const prefix = freshPrefix(o.label);
  const apiKey = `sk-bench-${randomBytes(8).toString('hex')}`;
  const tmp = mkdtempSync(join(tmpdir(), 'kie-bench-'));
  const reportFile = join(tmp, 'usage.jsonl');
  const sim = await startSimulator({ apiKeys: [apiKey], timeScale: o.timeScale, seed: 42, ...o.sim });
  const env: Record<string, string> = {
    ...scaledPipelineEnv({ simUrl: sim.url, apiKey, timeScale: o.timeScale, redisUrl: REDIS_URL, prefix }),
    LOG_LEVEL: 'info',
    ...(o.sim.webhookHmacKey ? { KIE_WEBHOOK_HMAC_KEY: o.sim.webhookHmacKey } : {}),
    ...o.env,
  };
  const rt = createRuntime(loadConfig({}, env), { log: pino({ level: 'silent' }) });
  const workers: Proc[] = [];
  let server: Proc | null = null;
  const rig: Rig = {
    sim,
    env,
    rt,
    prefix,
    apiKey,
    tmp,
    reportFile,
    workers,
    get server() {
      return server;
    },
    async startServer() {
      server = spawnUpscale('serve', ['serve', '--port', '0', '--no-dashboard', '--no-metrics'], { env, reportFile, logFile: join(tmp, 'serve.log') });
      await server.waitForOutput('listening on ', 60_000);
      const url = /listening on (\S+)/.exec(server.stdout())?.[1];
      if (!url) throw new Error(`upscale serve printed no address: ${server.stdout()}`);
      env.PUBLIC_BASE_URL = url;
      return url;
    },
    async startWorkers(count, args = [], extraEnv = {}) {
      const started = Array.from({ length: count }, (_, i) => {
        const name = `worker-${workers.length + i + 1}`;
        return spawnUpscale(name, ['worker', ...args], { env: { ...env, ...extraEnv }, reportFile, logFile: join(tmp, `${name}.log`) });
      });
      workers.push(...started);
      await Promise.all(started.map((p) => p.waitForOutput('workers started', 60_000)));
      return started;
    },
    async enqueue(images, batchId) {
      const r = await enqueue(
        rt,
        images.map((im) => ({ input: im.url, model: im.model, ...(im.factor ? { factor: im.factor } : {}) })),
        { batchId },
      );
      if (r.enqueued !== images.length) throw new Error(`enqueued ${r.enqueued} of ${images.length}: ${JSON.stringify(r.rejected.slice(0, 3))}`);
    },
    async stop() {
      forget();
      await stopAll(workers, 'SIGTERM', 15_000);
      if (server) await server.stop('SIGTERM', 10_000);
      await sim.stop();
      await deletePrefix(rt.redis, prefix).catch((e: unknown) => log(`cleanup of ${prefix} failed: ${String(e)}`));
      await rt.close();
      rmSync(tmp, { recursive: true, force: true });
    },
  };
  // Ctrl-C (bench/lib/interrupt.ts): the same teardown.
  const forget = onInterrupt(() => rig.stop());
  return rig;
}

/** Waits until every image of the batch is recorded in a terminal state; returns the summary. */
export async function waitForBatch(rt: Runtime, batchId: string, timeoutMs: number, onTick?: (done: number, total: number) => void) {
  let lastTick = 0;
  return waitFor(
    async () => {
      const s = await rt.store.getSummary(batchId);
      if (onTick && s && Date.now() - lastTick > 10_000) {
        lastTick = Date.now();
        const active = s.counts.waiting + s.counts.submitting + s.counts.polling;
        onTick(s.total - active, s.total);
      }
      return s && s.total > 0 && s.finishedAt !== null ? s : null;
    },
    `batch ${batchId} to finish`,
    timeoutMs,
    100,
  );
}
