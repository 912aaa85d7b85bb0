/**
 * Scenario 2, pipeline overhead: the simulator with no limits to speak of and ~1 ms task latency, so what is left
 * is our own cost per image. Images per second end to end through one `upscale worker` process, against a bare
 * BullMQ no-op pipeline of the same shape (bench/baselines/bare-bullmq.ts), measured in the same run; the bare
 * pipeline runs twice, without a limiter and with the limiter our lanes get from a very high budget
 * (`limiterFor`: the budget as fixed windows), so the limiter's own cost shows apart from ours.
 *
 * Also per image: worker CPU, Redis commands and Redis CPU, and the simulator's CPU (it runs in this process).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { JOB_OPTIONS } from '../../src/queue/queues.js';
import { limiterFor } from '../../src/queue/limits.js';
import { submitJobId } from '../../src/queue/identity.js';
import { sampleImages, startRig, waitForBatch } from '../lib/pipeline.js';
import { spawnScript, type Usage } from '../lib/procs.js';
import { commandDelta, commandStats, deletePrefix, freshPrefix, redisClient, redisCommands, redisCpuMs, REDIS_URL } from '../lib/redis.js';
import { finish, log, MB, type Metric, type ScenarioResult } from '../lib/report.js';
import { Queue } from 'bullmq';
import { startKieStub } from '../lib/kie-stub.js';

export interface OverheadOptions {
  images: number;
}

/** `upscale worker`'s default. */
const CONCURRENCY = 16;
/** Jobs in flight per lane are what bounds a worker when each job waits on HTTP and Redis round trips. */
const HIGH_CONCURRENCY = 64;

interface Throughput {
  variant: string;
  images: number;
  seconds: number;
  perSecond: number;
  workerCpuMsPerImage: number;
  redisCommandsPerImage: number;
  redisCpuMsPerImage: number;
  simCpuMsPerImage?: number;
  peakRssMB: number;
  recordInfoPerImage?: number;
  /** Redis calls per image by command (INFO commandstats; Lua-internal calls included), the shared Redis' other users too. */
  redisCallsPerImage: Record<string, number>;
}

export async function runOurs(n: number, backend: 'sim' | 'stub', concurrency = CONCURRENCY): Promise<Throughput> {
  const fast = { medianMs: 1, p95Ms: 2 };
  const unlimited = { max: 1_000_000, durationMs: 1000 };
  const apiKey = `sk-stub-${Date.now()}`;
  const stub = backend === 'stub' ? await startKieStub({ apiKey, latencyMs: 1 }) : null;
  const rig = await startRig({
    label: 's2',
    timeScale: 1,
    sim: { createLimit: unlimited, queryLimit: unlimited, latency: { 'topaz/image-upscale': fast, 'recraft/crisp-upscale': fast } },
    env: {
      KIE_CREATE_LIMIT: '1000000/1s',
      KIE_QUERY_LIMIT: '1000000/1s',
      POLL_MIN_INTERVAL: '1ms',
      POLL_MAX_INTERVAL: '1ms',
      ...(stub ? { KIE_BASE_URL: stub.url, KIE_API_KEY: apiKey } : {}),
    },
  });
  const redis = redisClient();
  try {
    const batchId = 'overhead';
    await rig.enqueue(sampleImages(rig.sim.url, n), batchId);
    const [worker] = await rig.startWorkers(1, ['--concurrency', String(concurrency)]);
    const cpu0 = (await worker!.sampleNow())?.cpuMs ?? 0;
    const [cmd0, rcpu0, stats0] = await Promise.all([redisCommands(redis), redisCpuMs(redis), commandStats(redis)]);
    const sim0 = process.cpuUsage();
    const summary = await waitForBatch(rig.rt, batchId, 600_000, (d, t) => log(`  ${d}/${t} done`));
    const simCpu = process.cpuUsage(sim0);
    const [cmd1, rcpu1, stats1] = await Promise.all([redisCommands(redis), redisCpuMs(redis), commandStats(redis)]);
    const cpu1 = (await worker!.sampleNow())?.cpuMs ?? cpu0;
    const stats = stub ? { queries: stub.stats().queries, queries429: 0 } : rig.sim.stats();
    await worker!.stop();
    const seconds = ((summary.finishedAt ?? 0) - (summary.startedAt ?? 0)) / 1000;
    if (summary.counts.succeeded !== n) log(`  warning: ${summary.counts.succeeded}/${n} succeeded: ${JSON.stringify(summary.counts)}`);
    return {
      variant: `${stub ? 'ours, against a zero-work kie.ai stub' : 'ours, against the simulator'}, concurrency ${concurrency}`,
      images: n,
      seconds,
      perSecond: n / seconds,
      workerCpuMsPerImage: (cpu1 - cpu0) / n,
      redisCommandsPerImage: (cmd1 - cmd0) / n,
      redisCpuMsPerImage: (rcpu1 - rcpu0) / n,
      simCpuMsPerImage: (simCpu.user + simCpu.system) / 1000 / n, // the simulator or the stub, and this process' polling
      peakRssMB: worker!.usage().peakRssBytes / MB,
      recordInfoPerImage: (stats.queries + stats.queries429) / n,
      redisCallsPerImage: commandDelta(stats0, stats1, n),
    };
  } finally {
    redis.disconnect();
    await rig.stop();
    await stub?.stop();
  }
}

async function runBare(n: number, withLimiter: boolean, tmp: string, reportFile: string): Promise<Throughput> {
  const prefix = freshPrefix('s2b');
  const redis = redisClient();
  const submit = new Queue('submit', { connection: redis, prefix, defaultJobOptions: JOB_OPTIONS.submit });
  try {
    for (let i = 0; i < n; i += 1000) {
      const jobs = Array.from({ length: Math.min(1000, n - i) }, (_, k) => {
        const jobId = (i + k).toString(16).padStart(24, '0');
        return {
          name: 'submit',
          data: { jobId, batchId: 'overhead', input: `https://images.example.com/p/${i + k}.png`, model: 'topaz/image-upscale', factor: '2', generation: 0 },
          opts: { jobId: submitJobId(jobId, 0) },
        };
      });
      await submit.addBulk(jobs);
    }
    const jobFile = join(tmp, `bare-${withLimiter ? 'limiter' : 'plain'}.json`);
    const limiter = withLimiter ? limiterFor({ max: 1_000_000, durationMs: 1000 }) : undefined;
    writeFileSync(jobFile, JSON.stringify({ redisUrl: REDIS_URL, prefix, count: n, concurrency: CONCURRENCY, ...(limiter ? { limiter } : {}) }));
    const p = spawnScript('bare-bullmq', 'bench/baselines/bare-bullmq.ts', [jobFile], { reportFile });
    await p.waitForOutput('ready', 60_000);
    const cpu0 = (await p.sampleNow())?.cpuMs ?? 0;
    const [cmd0, rcpu0, stats0] = await Promise.all([redisCommands(redis), redisCpuMs(redis), commandStats(redis)]);
    await p.waitForOutput('lastDoneAt', 600_000);
    const [cmd1, rcpu1, stats1] = await Promise.all([redisCommands(redis), redisCpuMs(redis), commandStats(redis)]);
    const cpu1 = (await p.sampleNow())?.cpuMs ?? cpu0;
    await p.exited;
    const line = p.stdout().split('\n').find((l) => l.includes('lastDoneAt'));
    const r = JSON.parse(line!) as { firstStartAt: number; lastDoneAt: number; done: number };
    const seconds = (r.lastDoneAt - r.firstStartAt) / 1000;
    const u: Usage = p.usage();
    return {
      variant: withLimiter ? 'bare BullMQ, with our limiter (1 start/ms)' : 'bare BullMQ, no limiter',
      images: n,
      seconds,
      perSecond: n / seconds,
      workerCpuMsPerImage: (cpu1 - cpu0) / n,
      redisCommandsPerImage: (cmd1 - cmd0) / n,
      redisCpuMsPerImage: (rcpu1 - rcpu0) / n,
      peakRssMB: u.peakRssBytes / MB,
      redisCallsPerImage: commandDelta(stats0, stats1, n),
    };
  } finally {
    await submit.close();
    await deletePrefix(redis, prefix);
    redis.disconnect();
  }
}

export async function runOverhead(o: OverheadOptions): Promise<ScenarioResult> {
  const started = Date.now();
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const tmp = mkdtempSync(join(tmpdir(), 'kie-bench-s2-'));
  const reportFile = join(tmp, 'usage.jsonl');
  try {
    log(`scenario 2: ${o.images} images, one worker process, concurrency ${CONCURRENCY}`);
    log('scenario 2: bare BullMQ, no limiter');
    const bare = await runBare(o.images, false, tmp, reportFile);
    log(`  ${bare.perSecond.toFixed(0)} images/s`);
    log('scenario 2: ours, against a zero-work kie.ai stub');
    const ours = await runOurs(o.images, 'stub');
    log(`  ${ours.perSecond.toFixed(0)} images/s`);
    log(`scenario 2: ours, against the stub, --concurrency ${HIGH_CONCURRENCY}`);
    const oursHigh = await runOurs(o.images, 'stub', HIGH_CONCURRENCY);
    log(`  ${oursHigh.perSecond.toFixed(0)} images/s`);
    log('scenario 2: ours, against the simulator');
    const viaSim = await runOurs(o.images, 'sim');
    log(`  ${viaSim.perSecond.toFixed(0)} images/s`);
    log('scenario 2: bare BullMQ, with the limiter');
    const bareLimited = await runBare(o.images, true, tmp, reportFile);
    log(`  ${bareLimited.perSecond.toFixed(0)} images/s`);
    const rows: Metric[] = [
      { name: 'end-to-end throughput, 1 worker process', unit: 'images/s', ours: ours.perSecond, baseline: bare.perSecond, better: 'higher', target: { text: '≥ 500/s', ok: (v) => v >= 500 }, note: 'kie.ai: zero-work stub; baseline: bare BullMQ no-op, same shape' },
      { name: `same, worker --concurrency ${HIGH_CONCURRENCY}`, unit: 'images/s', ours: oursHigh.perSecond, baseline: bare.perSecond, better: 'higher', target: { text: '≥ 500/s', ok: (v) => v >= 500 } },
      { name: 'same, against the simulator', unit: 'images/s', ours: viaSim.perSecond, baseline: bare.perSecond, better: 'higher', note: `the simulator spends ${viaSim.simCpuMsPerImage?.toFixed(1)} ms CPU per image itself` },
      { name: 'throughput vs bare BullMQ with the same limiter', unit: 'images/s', ours: ours.perSecond, baseline: bareLimited.perSecond, better: 'higher' },
      { name: 'worker CPU per image', unit: 'ms', ours: ours.workerCpuMsPerImage, baseline: bare.workerCpuMsPerImage, better: 'lower', target: { text: '≤ 3 ms', ok: (v) => v <= 3 }, note: 'from worker ready to the last image recorded; start-up left out' },
      { name: 'Redis commands per image', unit: 'commands', ours: ours.redisCommandsPerImage, baseline: bare.redisCommandsPerImage, better: 'lower' },
      { name: 'Redis CPU per image', unit: 'ms', ours: ours.redisCpuMsPerImage, baseline: bare.redisCpuMsPerImage, better: 'lower' },
    ];
    return {
      id: 2,
      title: 'Pipeline overhead',
      setup: { images: o.images, concurrency: CONCURRENCY, simulator: 'no limits, latency 1 ms median, in the benchmark process', pollInterval: '1 ms' },
      metrics: rows.map(finish),
      details: { runs: [ours, oursHigh, viaSim, bare, bareLimited] },
      wallMs: Date.now() - started,
    };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
