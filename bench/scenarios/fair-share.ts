/**
 * Scenario 6, the batch scheduler at catalogue size: what a submission costs in Redis when one batch holds
 * 100,000 waiting images and another a few thousand, against the same run with only 2,000 waiting in the big batch
 * (the baseline, measured in the same run). Limits out of the way (1,000,000/s) and a zero-work kie.ai stub, so the
 * pipeline's own cost per image is what is measured: Redis commands (INFO stats, every command of the run's Redis),
 * Redis CPU, worker CPU, throughput; and the small batch's share of the submissions while the big one waits (fair
 * share says one half, less the lookahead of the big batch admitted before the small one arrived).
 *
 * Each case runs on a private `redis-server` (when one is on PATH), so Redis' command counts are this run's alone,
 * not those of other users of a shared Redis.
 */
import { Redis } from 'ioredis';
import { onPath, startRedisServer, type DemoRedis } from '../../src/demo/redis.js';
import { sampleImages, startRig } from '../lib/pipeline.js';
import { commandDelta, commandStats, REDIS_URL, redisCommands, redisCpuMs } from '../lib/redis.js';
import { finish, log, waitFor, type Metric, type ScenarioResult } from '../lib/report.js';
import { startKieStub } from '../lib/kie-stub.js';

export interface FairShareOptions {
  /** Images waiting in the big batch. */
  big: number;
  /** Images of the small batch, submitted while the big one waits. */
  small: number;
}

interface Run {
  variant: string;
  bigWaiting: number;
  submitted: number;
  smallShare: number;
  seconds: number;
  perSecond: number;
  redisCommandsPerImage: number;
  redisCpuMsPerImage: number;
  workerCpuMsPerImage: number;
  enqueueSeconds: number;
  redisCallsPerImage: Record<string, number>;
}

async function runCase(big: number, small: number, redisUrl: string): Promise<Run> {
  const unlimited = { max: 1_000_000, durationMs: 1000 };
  const apiKey = `sk-stub-${Date.now()}`;
  const stub = await startKieStub({ apiKey, latencyMs: 1 });
  const rig = await startRig({
    label: 's5',
    timeScale: 1,
    sim: { createLimit: unlimited, queryLimit: unlimited },
    env: {
      KIE_CREATE_LIMIT: '1000000/1s',
      KIE_QUERY_LIMIT: '1000000/1s',
      POLL_MIN_INTERVAL: '1ms',
      POLL_MAX_INTERVAL: '1ms',
      KIE_BASE_URL: stub.url,
      KIE_API_KEY: apiKey,
      REDIS_URL: redisUrl,
    },
  });
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 3 });
  try {
    const t = Date.now();
    await rig.enqueue(sampleImages(rig.sim.url, big), 'big');
    await rig.enqueue(sampleImages(rig.sim.url, small).map((im) => ({ ...im, url: `${im.url}&small` })), 'small');
    const enqueueSeconds = (Date.now() - t) / 1000;
    const [worker] = await rig.startWorkers(1);
    const cpu0 = (await worker!.sampleNow())?.cpuMs ?? 0;
    const [cmd0, rcpu0, stats0] = await Promise.all([redisCommands(redis), redisCpuMs(redis), commandStats(redis)]);
    const t0 = Date.now();
    const done = await waitFor(
      async () => {
        const s = await rig.rt.store.getSummary('small');
        return s && s.counts.waiting + s.counts.submitting + s.counts.polling === 0 ? s : null;
      },
      'the small batch to finish',
      600_000,
      100,
    );
    const seconds = (Date.now() - t0) / 1000;
    const [cmd1, rcpu1, stats1] = await Promise.all([redisCommands(redis), redisCpuMs(redis), commandStats(redis)]);
    const cpu1 = (await worker!.sampleNow())?.cpuMs ?? cpu0;
    const bigSummary = (await rig.rt.store.getSummary('big'))!;
    const bigSubmitted = bigSummary.total - bigSummary.counts.waiting;
    const submitted = done.total + bigSubmitted;
    return {
      variant: `${big.toLocaleString('en')} waiting in one batch, ${small.toLocaleString('en')} in another`,
      bigWaiting: big,
      submitted,
      smallShare: done.total / submitted,
      seconds,
      perSecond: submitted / seconds,
      redisCommandsPerImage: (cmd1 - cmd0) / submitted,
      redisCpuMsPerImage: (rcpu1 - rcpu0) / submitted,
      workerCpuMsPerImage: (cpu1 - cpu0) / submitted,
      enqueueSeconds,
      redisCallsPerImage: commandDelta(stats0, stats1, submitted),
    };
  } finally {
    redis.disconnect();
    await rig.stop();
    await stub.stop();
  }
}

export async function runFairShare(o: FairShareOptions): Promise<ScenarioResult> {
  const started = Date.now();
  const base = 3 * o.small;
  log(`scenario 6: ${o.small} images submitted beside ${o.big} waiting in one batch, and beside ${base}`);
  const binary = await onPath('redis-server', process.env.PATH);
  const fresh = async (): Promise<DemoRedis> => (binary ? startRedisServer(binary) : { url: REDIS_URL, how: 'shared', stop: () => Promise.resolve() });
  let server = await fresh();
  const baseline = await runCase(base, o.small, server.url).finally(() => server.stop());
  log(`  baseline: ${baseline.redisCommandsPerImage.toFixed(1)} Redis commands per submitted image, small share ${baseline.smallShare.toFixed(2)}`);
  server = await fresh();
  const ours = await runCase(o.big, o.small, server.url).finally(() => server.stop());
  log(`  ${o.big} waiting: ${ours.redisCommandsPerImage.toFixed(1)} Redis commands per submitted image, small share ${ours.smallShare.toFixed(2)}`);
  const script = (r: Run) => (r.redisCallsPerImage.evalsha ?? 0) + (r.redisCallsPerImage.eval ?? 0);
  const rows: Metric[] = [
    { name: `Redis commands per submitted image, ${o.big.toLocaleString('en')} waiting in one batch`, unit: 'commands', ours: ours.redisCommandsPerImage, baseline: baseline.redisCommandsPerImage, better: 'lower', target: { text: 'ratio ≥ 0.95', onRatio: (r) => r >= 0.95 }, note: `baseline: ${base.toLocaleString('en')} waiting; both lanes, zero-work kie.ai stub; ${binary ? 'private redis-server per case' : 'shared Redis (no redis-server on PATH): other users count too'}` },
    { name: 'Redis CPU per submitted image', unit: 'ms', ours: ours.redisCpuMsPerImage, baseline: baseline.redisCpuMsPerImage, better: 'lower' },
    { name: 'Lua scripts per submitted image (BullMQ and ours)', unit: 'calls', ours: script(ours), baseline: script(baseline), better: 'lower' },
    { name: 'worker CPU per submitted image', unit: 'ms', ours: ours.workerCpuMsPerImage, baseline: baseline.workerCpuMsPerImage, better: 'lower' },
    { name: 'throughput, 1 worker process', unit: 'images/s', ours: ours.perSecond, baseline: baseline.perSecond, better: 'higher' },
    { name: "small batch's share of submissions while it waits", unit: 'share', ours: ours.smallShare, baseline: baseline.smallShare, better: 'higher', target: { text: '≈ 0.5', ok: (v) => Math.abs(v - 0.5) <= 0.08 }, note: 'less the big batch\'s lookahead (256 at this budget) admitted before the small one came' },
  ];
  return {
    id: 6,
    title: 'Batch scheduler at catalogue size',
    setup: { big: o.big, baselineBig: base, small: o.small, concurrency: 16, kie: 'zero-work stub, limits 1,000,000/s', redis: binary ? 'private redis-server per case' : 'shared' },
    metrics: rows.map(finish),
    details: { runs: [baseline, ours] },
    wallMs: Date.now() - started,
  };
}
