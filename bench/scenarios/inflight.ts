/**
 * Scenario 4, in-flight scale: N tasks in flight at once (the simulator's latency is hours, its create limit
 * generous, so all get created quickly and none ends), through one `upscale worker` process. Measured once all N
 * are `polling`: the worker's RSS, and Redis memory per in-flight image (`MEMORY USAGE` summed over the run's
 * prefix, which other users of the same Redis cannot disturb; `used_memory` deltas are kept in the details).
 *
 * Baselines, same run: for Redis, N bare BullMQ delayed jobs carrying the same poll data (the least any design that
 * parks a task in BullMQ can store); for RSS, one naive client process (bench/baselines/naive.ts) holding the same
 * N tasks in flight in memory (p-limit N, a 30 s poll loop each).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { pollJobId } from '../../src/queue/identity.js';
import { storedPollData, type PollJobData } from '../../src/queue/job-data.js';
import { JOB_OPTIONS } from '../../src/queue/queues.js';
import { sampleImages, startRig } from '../lib/pipeline.js';
import { sampleProc, spawnScript } from '../lib/procs.js';
import { deletePrefix, freshPrefix, memoryByKind, redisClient, usedMemory } from '../lib/redis.js';
import { finish, log, MB, sleep, waitFor, type Metric, type ScenarioResult } from '../lib/report.js';

export interface InflightOptions {
  images: number;
}

const HOURS = 3600_000;
const LONG = { medianMs: 6 * HOURS, p95Ms: 12 * HOURS };
const GENEROUS = { max: 100_000, durationMs: 10_000 };
const SETTLE_MS = 3000;

async function runOurs(n: number) {
  const rig = await startRig({
    label: 's4',
    timeScale: 1,
    sim: { createLimit: GENEROUS, latency: { 'topaz/image-upscale': LONG, 'recraft/crisp-upscale': LONG }, credits: 1e9 },
    env: { KIE_CREATE_LIMIT: `${GENEROUS.max}/10s`, POLL_DEADLINE: '24h' },
  });
  const redis = redisClient();
  try {
    const used0 = await usedMemory(redis);
    const batchId = 'inflight';
    await rig.enqueue(sampleImages(rig.sim.url, n), batchId);
    const waiting = await memoryByKind(redis, rig.prefix);
    const [worker] = await rig.startWorkers(1);
    const t0 = Date.now();
    let lastLog = 0;
    await waitFor(
      async () => {
        const s = await rig.rt.store.getSummary(batchId);
        if (s && Date.now() - lastLog > 10_000) {
          lastLog = Date.now();
          log(`  ${s.counts.polling}/${n} in flight`);
        }
        return s && s.counts.polling === n;
      },
      `${n} tasks in flight`,
      15 * 60_000,
      250,
    );
    const createS = (Date.now() - t0) / 1000;
    await sleep(SETTLE_MS);
    const inflight = await memoryByKind(redis, rig.prefix);
    const used1 = await usedMemory(redis);
    const now = await sampleProc(worker!.pid);
    const stats = rig.sim.stats();
    await worker!.stop();
    const peak = worker!.usage().peakRssBytes;
    return {
      createS,
      tasksInFlightAtSim: stats.tasksInFlight,
      queries: stats.queries,
      rssNowMB: (now?.peakRssBytes ?? NaN) / MB,
      peakRssMB: peak / MB,
      redisBytesPerImage: inflight.total / n,
      redisBytesPerImageWaiting: waiting.total / n,
      usedMemoryDeltaPerImage: (used1 - used0) / n,
      byKind: Object.fromEntries(Object.entries(inflight.byKind).map(([k, v]) => [k, { keys: v.keys, bytesPerImage: Math.round(v.bytes / n) }])),
    };
  } finally {
    redis.disconnect();
    await rig.stop();
  }
}

/** N delayed BullMQ jobs with the same poll data: what parking a task in BullMQ costs at the least. */
async function runBareRedis(n: number) {
  const prefix = freshPrefix('s4b');
  const redis = redisClient();
  const queue = new Queue('poll', { connection: redis, prefix, defaultJobOptions: JOB_OPTIONS.poll });
  try {
    const now = Date.now();
    for (let i = 0; i < n; i += 1000) {
      const jobs = Array.from({ length: Math.min(1000, n - i) }, (_, k) => {
        const jobId = (i + k).toString(16).padStart(24, '0');
        const data: PollJobData = {
          jobId,
          batchId: 'inflight',
          model: 'topaz/image-upscale',
          taskId: (i + k).toString(16).padStart(32, '0'),
          generation: 0,
          submittedAt: now,
          deadlineAt: now + 24 * HOURS,
          polls: 0,
          errors: 0,
        };
        return { name: 'poll', data: storedPollData(data), opts: { jobId: pollJobId(jobId, 0), delay: HOURS } };
      });
      await queue.addBulk(jobs);
    }
    const m = await memoryByKind(redis, prefix);
    return { redisBytesPerImage: m.total / n, byKind: m.byKind };
  } finally {
    await queue.close();
    await deletePrefix(redis, prefix);
    redis.disconnect();
  }
}

/** One naive client process holding `n` tasks in flight in memory. */
async function runNaive(n: number) {
  const rig = await startRig({
    label: 's4n',
    timeScale: 1,
    sim: { createLimit: GENEROUS, latency: { 'topaz/image-upscale': LONG, 'recraft/crisp-upscale': LONG }, credits: 1e9 },
  });
  try {
    const jobFile = join(rig.tmp, 'naive.json');
    writeFileSync(
      jobFile,
      JSON.stringify({
        simUrl: rig.sim.url,
        apiKey: rig.apiKey,
        timeScale: 1,
        out: join(rig.tmp, 'naive.jsonl'),
        images: sampleImages(rig.sim.url, n),
        settings: { concurrency: n, createLimit: { max: GENEROUS.max, windowMs: GENEROUS.durationMs }, pollIntervalMs: 30_000, deadlineMs: 24 * HOURS },
      }),
    );
    const p = spawnScript('naive', 'bench/baselines/naive.ts', [jobFile], { reportFile: rig.reportFile });
    const t0 = Date.now();
    await waitFor(() => rig.sim.stats().createAccepted >= n || p.child.exitCode !== null, `naive: ${n} tasks created`, 15 * 60_000, 250);
    const createS = (Date.now() - t0) / 1000;
    await sleep(SETTLE_MS);
    const now = await sampleProc(p.pid);
    await p.stop('SIGKILL');
    return { createS, rssNowMB: (now?.peakRssBytes ?? NaN) / MB, peakRssMB: p.usage().peakRssBytes / MB };
  } finally {
    await rig.stop();
  }
}

export async function runInflight(o: InflightOptions): Promise<ScenarioResult> {
  const started = Date.now();
  log(`scenario 4: ${o.images.toLocaleString('en-US')} tasks in flight, one worker process`);
  log('scenario 4: ours');
  const ours = await runOurs(o.images);
  log(`  created in ${ours.createS.toFixed(0)} s; worker peak RSS ${ours.peakRssMB.toFixed(0)} MB; Redis ${ours.redisBytesPerImage.toFixed(0)} B per image`);
  log('scenario 4: bare BullMQ delayed jobs (Redis floor)');
  const bare = await runBareRedis(o.images);
  log('scenario 4: naive client holding the tasks in memory');
  const naive = await runNaive(o.images);
  log(`  created in ${naive.createS.toFixed(0)} s; peak RSS ${naive.peakRssMB.toFixed(0)} MB`);
  const rows: Metric[] = [
    { name: 'worker peak RSS with all tasks in flight', unit: 'MB', ours: ours.peakRssMB, baseline: naive.peakRssMB, better: 'lower', target: { text: '≤ 150 MB', ok: (v) => v <= 150 }, note: 'baseline: one naive process holding them in memory' },
    { name: 'Redis per in-flight image', unit: 'bytes', ours: ours.redisBytesPerImage, baseline: bare.redisBytesPerImage, better: 'lower', target: { text: '≤ 2 KB', ok: (v) => v <= 2048 }, note: 'MEMORY USAGE over the prefix; baseline: one bare delayed BullMQ job each' },
    { name: 'time to put all in flight', unit: 's', ours: ours.createS, baseline: naive.createS, better: 'lower' },
  ];
  return {
    id: 4,
    title: 'In-flight scale',
    setup: { images: o.images, latency: '6 h median, 12 h p95 (none ends)', createLimit: '100,000 / 10 s', queryLimit: '10 / s', workers: 1 },
    metrics: rows.map(finish),
    details: { ours, bare, naive },
    wallMs: Date.now() - started,
  };
}
