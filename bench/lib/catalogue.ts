/**
 * A catalogue run: N images end to end through real processes, with faults, measured. Shared by the benchmark
 * scenario `catalogue` (100,000 images, every figure) and the chaos suite's 10,000-image test (the same checks,
 * asserted), so both prove the same thing the same way.
 *
 * The rig: a `redis-server` of the run's own on a free loopback port (AOF on, `appendfsync everysec` as
 * docker-compose.yml runs it), the simulator in this process in light mode (`SimOptions.light`: one real upscale per
 * kind of output, see the README) at a compressed time scale with kie.ai's documented limits scaled by it, signed
 * callbacks through `upscale serve` (dashboard on), `workers` `upscale worker` processes, and `upscale enqueue` of a
 * generated CSV (url, model, factor, sku) as a user runs it. While the batch drains, two workers are SIGKILLed (and
 * restarted) and Redis is shut down and started again once (its AOF reloaded).
 *
 * Afterwards: every image terminal, none lost; every accepted createTask beyond an input's first covered by an
 * ambiguous attempt on its record (else paid twice); `upscale export` writes one line per image and each agrees with
 * the simulator's task; no process died but by the run's hand, every survivor stops cleanly on SIGTERM, and no log
 * holds a crash or a secret. With `measure`, also: Redis memory (peak `used_memory`, `MEMORY USAGE` by kind after
 * enqueue and at the end), `upscale status --json` latency, `upscale export` time and peak RSS, the batches page and
 * the batch page latency through the live server, peak RSS and CPU per image of every process.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/index.js';
import { getStatus } from '../../src/control/index.js';
import type { ResultRecord } from '../../src/results/record.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import type { Redis } from 'ioredis';
import { startSimulator, type SimTaskRecord, type Simulator } from '../../src/sim/index.js';
import { scaledPipelineEnv } from '../../src/sim/scaled-config.js';
import { startFleet, type Fleet } from '../../test/helpers/fleet.js';
import { startRedisServer, type RedisServer } from '../../test/helpers/redis-server.js';
import { checkPayments, compareWithTask, inputsCreatedTwice, tallyRecords } from '../../test/helpers/run-checks.js';
import { spawnUpscale, type Proc } from './procs.js';
import { quantile, sleep } from './report.js';
import { onInterrupt } from './interrupt.js';

const exec = promisify(execFile);

export const CATALOGUE_BATCH = 'catalogue';

/** One fault during the drain, when `at` (a share of the images) are terminal. */
export type Disturbance = { at: number; what: 'kill'; slot: number } | { at: number; what: 'redis' };

/** Two SIGKILLed workers (restarted) and one Redis restart, spread over the drain. */
export const DEFAULT_PLAN: readonly Disturbance[] = [
  { at: 0.25, what: 'kill', slot: 0 },
  { at: 0.5, what: 'redis' },
  { at: 0.75, what: 'kill', slot: 2 },
];

export interface CatalogueOptions {
  images: number;
  /** Speed-up of kie.ai's time (latencies, windows, the pipeline's intervals): `scaledPipelineEnv`. */
  timeScale: number;
  /** `upscale worker` processes. @defaultValue 4 */
  workers?: number;
  /** @defaultValue DEFAULT_PLAN */
  plan?: readonly Disturbance[];
  /** Take every figure (memory scans, status, export and page latencies), not only the checks. @defaultValue false */
  measure?: boolean;
  /** How long the drain may take before the run fails, ms. */
  timeoutMs: number;
  /** Progress lines. @defaultValue none */
  log?: (msg: string) => void;
  /** Extra environment of every process (after the scaled one). */
  env?: Record<string, string>;
  /** Extra arguments of `upscale worker` (e.g. `--concurrency 8`). */
  workerArgs?: string[];
}

/** p50 / p95 / max of some timings, ms. */
export interface Timing {
  n: number;
  p50: number | null;
  p95: number | null;
  max: number | null;
}

/** Redis memory by kind of key (`MEMORY USAGE`), bytes. */
export interface MemoryBreakdown {
  usedMemory: number;
  keys: number;
  records: number;
  index: number;
  jobs: number;
  scheduler: number;
  other: number;
}

export interface ProcFigures {
  name: string;
  peakRssBytes: number;
  cpuMs: number;
  endedBy: string;
}

export interface CatalogueRun {
  images: number;
  enqueued: number;
  timeScale: number;
  workers: number;
  records: number;
  terminal: number;
  lost: number;
  states: Record<string, number>;
  /** Sum of `ambiguousSubmits` over the records. */
  ambiguous: number;
  createAccepted: number;
  /** createAccepted ÷ images. */
  createPerInput: number;
  duplicates: number;
  duplicatesWithoutAmbiguity: number;
  unexplained: string[];
  create429: number;
  query429: number;
  recordInfoCalls: number;
  callbacksSent: number;
  callbacksFailed: number;
  exported: number;
  exportMismatches: string[];
  events: string[];
  kills: number;
  redisRestarts: number;
  unexpectedExits: string[];
  uncleanStops: string[];
  /** Log lines of a crash, and secrets found in a log (file names and what). */
  logProblems: string[];
  /** ms: `upscale enqueue` spawn → exit; first accepted createTask → last image terminal; enqueue start → last terminal. */
  enqueueMs: number;
  drainMs: number;
  wallMs: number;
  /** images ÷ drainMs, per second. */
  imagesPerSecond: number;
  loadavg: { before: number[]; after: number[] };
  procs: ProcFigures[];
  /** This process: the simulator, the harness' polling and checks. */
  harnessCpuMs: number;
  redis: {
    /** Most `used_memory` seen (sampled every second, and INFO's own `used_memory_peak`), bytes. */
    peakUsedMemory: number;
    /** `used_memory` of the empty server before the run. */
    baseUsedMemory: number;
    /** `used_memory` at the end, after the lanes' job retention. */
    endUsedMemory: number;
    /** Main thread and AOF rewrite children, summed over both server runs, ms. */
    cpuMs: number;
    /** Calls per command over the run (both server runs; commands run inside scripts count too). */
    commands: Record<string, number>;
    aofBytes: number;
    afterEnqueue: MemoryBreakdown | null;
    atEnd: MemoryBreakdown | null;
  };
  export: { ms: number; peakRssBytes: number; bytes: number };
  status: { batchJson: Timing; allJson: Timing; inProcess: Timing } | null;
  pages: Record<string, Timing> | null;
  /** Where the logs are (kept when a check fails). */
  dir: string;
}

function timing(values: number[]): Timing {
  return { n: values.length, p50: quantile(values, 0.5), p95: quantile(values, 0.95), max: quantile(values, 1) };
}

function info(text: string, field: string): number {
  return Number(new RegExp(`^${field}:([\\d.]+)`, 'm').exec(text)?.[1] ?? NaN);
}

/** Main-thread and children CPU of the Redis server `redis` talks to, ms (resets when it restarts). */
async function redisCpu(redis: Redis): Promise<number> {
  const text = await redis.info('cpu');
  return ['used_cpu_sys', 'used_cpu_user', 'used_cpu_sys_children', 'used_cpu_user_children'].reduce((s, f) => s + (info(text, f) || 0), 0) * 1000;
}

/** Calls per command since the server started (INFO commandstats; commands run by scripts count too). */
async function redisCommandStats(redis: Redis): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const m of (await redis.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out[m[1] as string] = Number(m[2]);
  return out;
}

function addCounts(into: Record<string, number>, more: Record<string, number>): void {
  for (const [k, v] of Object.entries(more)) into[k] = (into[k] ?? 0) + v;
}

async function redisMemory(redis: Redis): Promise<{ used: number; peak: number }> {
  const text = await redis.info('memory');
  return { used: info(text, 'used_memory'), peak: info(text, 'used_memory_peak') };
}

/** `MEMORY USAGE` of every key of the server (the run's own), grouped by kind. */
async function memoryBreakdown(rt: Runtime, prefix: string): Promise<MemoryBreakdown> {
  const out: MemoryBreakdown = { usedMemory: 0, keys: 0, records: 0, index: 0, jobs: 0, scheduler: 0, other: 0 };
  out.usedMemory = info(await rt.redis.info('memory'), 'used_memory');
  let cursor = '0';
  do {
    const [next, keys] = await rt.redis.scan(cursor, 'COUNT', 2000);
    cursor = next;
    if (keys.length === 0) continue;
    const p = rt.redis.pipeline();
    for (const k of keys) p.memory('USAGE', k, 'SAMPLES', '0');
    const res = (await p.exec()) ?? [];
    keys.forEach((k, i) => {
      const bytes = Number(res[i]?.[1] ?? 0);
      const rest = k.slice(prefix.length + 1);
      const kind = /^batch:[^:]+:records$/.test(rest)
        ? 'records'
        : /^batch:[^:]+:ix:/.test(rest)
          ? 'index'
          : /^(submit|poll|download):/.test(rest)
            ? 'jobs'
            : /^(batch:[^:]+:held|sched:)/.test(rest)
              ? 'scheduler'
              : 'other';
      out[kind] += bytes;
      out.keys++;
    });
  } while (cursor !== '0');
  return out;
}

/** The input file: `url,model,factor,sku`, two in three topaz (×2, ×4), one in three recraft, three formats. */
function writeCatalogue(file: string, simUrl: string, images: number): void {
  const lines = ['url,model,factor,sku'];
  const formats = ['png', 'jpg', 'webp'] as const;
  for (let i = 0; i < images; i++) {
    const url = `${simUrl}/sim/images/item-${32 + (i % 2) * 16}x24.${formats[i % 3]}?i=${i}`;
    const recraft = i % 3 === 2;
    lines.push(`${url},${recraft ? 'recraft/crisp-upscale' : 'topaz/image-upscale'},${recraft ? '' : i % 2 === 0 ? '2' : '4'},SKU-${String(i).padStart(6, '0')}`);
  }
  writeFileSync(file, lines.join('\n') + '\n');
}

/** Spawn → exit of `upscale <args>`, with its peak RSS and CPU; rejects on a non-zero exit. */
async function runOnce(name: string, args: string[], env: Record<string, string>, reportFile: string) {
  const t = Date.now();
  const p = spawnUpscale(name, args, { env, reportFile });
  const end = await p.exited;
  if (end.code !== 0) throw new Error(`upscale ${args.join(' ')} exited ${end.code ?? end.signal}: ${p.stderr().slice(-2000)}`);
  return { ms: end.at - t, usage: p.usage(), stdout: p.stdout() };
}

/** Streams the exported JSONL: the line count, and every record compared with the simulator's task. */
async function checkExport(file: string, tasks: ReadonlyMap<string, SimTaskRecord>): Promise<{ lines: number; mismatches: string[] }> {
  let lines = 0;
  const mismatches: string[] = [];
  for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
    if (line === '') continue;
    lines++;
    const r = JSON.parse(line) as ResultRecord;
    mismatches.push(...compareWithTask(r, tasks.get(r.taskId ?? '')));
  }
  return { lines, mismatches };
}

/** Crashes and secrets in the processes' logs, with grep (logs of 100,000 images do not fit in a string). */
async function scanLogs(dir: string, secrets: string[]): Promise<string[]> {
  const files = readdirSync(dir).filter((f) => f.endsWith('.log')).map((f) => join(dir, f));
  if (files.length === 0) return [];
  const grep = async (args: string[]) => {
    try {
      return (await exec('grep', [...args, ...files], { maxBuffer: 16 * 1024 * 1024 })).stdout.trim();
    } catch (e) {
      if ((e as { code?: number }).code === 1) return ''; // no match
      throw e;
    }
  };
  const problems: string[] = [];
  const crashes = await grep(['-E', '-m', '3', '-H', 'Unhandled|uncaughtException|ReferenceError|"level":60']);
  if (crashes) problems.push(...crashes.split('\n').map((l) => `crash: ${l.slice(0, 400)}`));
  for (const s of secrets) {
    const found = await grep(['-F', '-l', s]);
    if (found) problems.push(`a secret is in ${found.split('\n').join(', ')}`);
  }
  return problems;
}

async function timeRequests(url: string, repeats: number): Promise<Timing> {
  const ms: number[] = [];
  for (let i = 0; i <= repeats; i++) {
    const t = performance.now();
    const res = await fetch(url);
    const body = await res.text();
    if (!res.ok) throw new Error(`GET ${url} answered ${res.status}: ${body.slice(0, 300)}`);
    if (i > 0) ms.push(performance.now() - t); // the first one warms up
  }
  return timing(ms);
}

/** Runs the catalogue; throws only when the rig itself fails (the checks are in the result, for the caller to judge). */
export async function runCatalogue(o: CatalogueOptions): Promise<CatalogueRun> {
  const say = o.log ?? (() => undefined);
  const workers = o.workers ?? 4;
  const plan = [...(o.plan ?? DEFAULT_PLAN)].sort((a, b) => a.at - b.at);
  const loadBefore = loadavg();
  const dir = mkdtempSync(join(tmpdir(), 'kie-catalogue-'));
  const reportFile = join(dir, 'usage.jsonl');
  const prefix = 'cat';
  const apiKey = `sk-cat-${randomBytes(8).toString('hex')}`;
  const hmacKey = `whk-cat-${randomBytes(8).toString('hex')}`;
  const harnessCpu0 = process.cpuUsage();

  let redis: RedisServer | undefined;
  let sim: Simulator | undefined;
  let rt: Runtime | undefined;
  let fleet: Fleet<Proc> | undefined;
  let sampler: NodeJS.Timeout | undefined;
  // Ctrl-C: the same teardown as below, and the run's folder too (bench/lib/interrupt.ts).
  const forget = onInterrupt(async () => {
    for (const fp of fleet?.procs ?? []) if (fp.exit === null) fp.proc.child.kill('SIGKILL');
    await sim?.stop();
    await redis?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });
  try {
    redis = await startRedisServer({ aof: true, appendfsync: 'everysec' });
    sim = await startSimulator({
      apiKeys: [apiKey],
      timeScale: o.timeScale,
      seed: 18,
      light: true,
      webhookHmacKey: hmacKey,
      credits: 1e12,
      failRate: 0.01,
      failCodes: { '422': 1 },
    });
    const env: Record<string, string> = {
      ...scaledPipelineEnv({ simUrl: sim.url, apiKey, timeScale: o.timeScale, redisUrl: redis.url, prefix }),
      KIE_WEBHOOK_HMAC_KEY: hmacKey,
      LOG_LEVEL: 'info',
      // The deadline is not under test: a Redis restart or a starved process must not turn a task timed_out.
      POLL_DEADLINE: '30m',
      // A job lock is a process' liveness, real time like the request timeout, not kie.ai time: the scaled 2 s lapses
      // whenever two shared cores starve an event loop for 2 s (load 20), and each lapse re-runs a job. Production's
      // default is 30 s; a SIGKILLed worker's jobs are taken over after about twice this.
      JOB_LOCK_DURATION: '10s',
      ...o.env,
    };
    rt = createRuntime(loadConfig({}, env), { log: pino({ level: 'silent' }) });
    rt.redis.on('error', () => undefined);
    const statsRedis = rt.redis;
    const baseUsedMemory = (await redisMemory(statsRedis)).used;
    // /proc is sampled once a second: the peak RSS of a long run moves slowly, and every sample costs this process.
    const spawner = (name: string, args: string[], e: Record<string, string>) => spawnUpscale(name, args, { env: e, reportFile, logFile: join(dir, `${name}.log`), sampleMs: 1000 });
    fleet = await startFleet(env, workers, [], spawner, o.workerArgs ?? []);
    say(`serve at ${fleet.serveUrl}, ${workers} workers, Redis on ${redis.port}, simulator ×${o.timeScale} at ${sim.url}`);

    // Redis memory and CPU, sampled while the run goes on (the server's counters restart with it).
    let peakUsedMemory = baseUsedMemory;
    let redisCpuBefore = 0;
    const commandsBefore: Record<string, number> = {};
    let restarting = false;
    sampler = setInterval(() => {
      if (restarting) return;
      redisMemory(statsRedis).then(
        (m) => (peakUsedMemory = Math.max(peakUsedMemory, m.used, m.peak)),
        () => undefined,
      );
    }, 1000);

    const file = join(dir, 'catalogue.csv');
    writeCatalogue(file, sim.url, o.images);
    const t0 = Date.now();
    const enq = await runOnce('enqueue', ['enqueue', file, '--batch', CATALOGUE_BATCH, '--json'], env, reportFile);
    const enqueued = (JSON.parse(enq.stdout) as { enqueued: number }).enqueued;
    say(`enqueued ${enqueued} in ${(enq.ms / 1000).toFixed(1)} s`);
    const afterEnqueue = o.measure ? await memoryBreakdown(rt, prefix) : null;

    const finished = async () => {
      const s = await rt!.store.getSummary(CATALOGUE_BATCH);
      return s ? s.total - s.counts.waiting - s.counts.held - s.counts.submitting - s.counts.polling : 0;
    };
    const events: string[] = [];
    let kills = 0;
    let redisRestarts = 0;
    let lastLog = 0;
    const deadline = t0 + o.timeoutMs;
    let done = 0;
    let step = 0;
    for (;;) {
      done = await finished().catch(() => done);
      if (Date.now() - lastLog > 15_000) {
        lastLog = Date.now();
        say(`  ${done}/${o.images} terminal after ${((Date.now() - t0) / 1000).toFixed(0)} s (load ${loadavg()[0]!.toFixed(1)})`);
      }
      const next = plan[step];
      if (next && done >= next.at * o.images) {
        const at = `${((Date.now() - t0) / 1000).toFixed(1)} s, ${done} terminal`;
        if (next.what === 'kill') {
          await fleet.killAndRestart(next.slot);
          kills++;
          events.push(`${at}: SIGKILL worker ${next.slot}, restarted`);
        } else {
          restarting = true;
          redisCpuBefore += await redisCpu(statsRedis);
          addCounts(commandsBefore, await redisCommandStats(statsRedis));
          peakUsedMemory = Math.max(peakUsedMemory, (await redisMemory(statsRedis)).peak);
          const t = Date.now();
          await redis.restart('shutdown');
          restarting = false;
          redisRestarts++;
          events.push(`${at}: Redis shut down (AOF fsynced) and started again in ${((Date.now() - t) / 1000).toFixed(1)} s`);
        }
        say(`  ${events[events.length - 1]}`);
        step++;
        continue;
      }
      if (done >= o.images) break;
      if (Date.now() > deadline) throw new Error(`the drain did not end within ${Math.round(o.timeoutMs / 1000)} s: ${done} of ${o.images} terminal`);
      await sleep(500);
    }
    const allDone = Date.now();
    const summary = (await rt.store.getSummary(CATALOGUE_BATCH))!;
    const simTasks = sim.tasks();
    // A reduce, not Math.min(...): 100,000 arguments overflow the stack.
    const firstCreate = simTasks.reduce((m, t) => Math.min(m, t.createdAt), Infinity);
    const lastDone = summary.finishedAt ?? summary.updatedAt ?? allDone;
    const drainMs = Math.max(1, Math.min(lastDone, allDone) - firstCreate);
    say(`all ${o.images} terminal ${((allDone - t0) / 1000).toFixed(0)} s after the enqueue started (drain ${(drainMs / 1000).toFixed(0)} s)`);

    // The checks.
    const stats = sim.stats();
    const tally = await tallyRecords(rt.store.records(CATALOGUE_BATCH, 1000), inputsCreatedTwice(stats.perInput));
    const payments = checkPayments(stats.perInput, tally.ambiguousByInput);
    const exportFile = join(dir, 'export.jsonl');
    const exp = await runOnce('export', ['export', '--batch', CATALOGUE_BATCH, '--out', exportFile], env, reportFile);
    const checked = await checkExport(exportFile, new Map(simTasks.map((t) => [t.taskId, t])));
    say(`export: ${checked.lines} lines in ${(exp.ms / 1000).toFixed(1)} s, ${checked.mismatches.length} mismatches`);

    // What a user sees at this size, through the live processes.
    let status: CatalogueRun['status'] = null;
    let pages: CatalogueRun['pages'] = null;
    let atEnd: MemoryBreakdown | null = null;
    if (o.measure) {
      const batchJson: number[] = [];
      const allJson: number[] = [];
      for (let i = 0; i < 5; i++) {
        batchJson.push((await runOnce('status', ['status', '--json', '--batch', CATALOGUE_BATCH], env, reportFile)).ms);
        allJson.push((await runOnce('status', ['status', '--json'], env, reportFile)).ms);
      }
      const inProcess: number[] = [];
      for (let i = 0; i < 20; i++) {
        const t = performance.now();
        await getStatus(rt, { batchId: CATALOGUE_BATCH });
        inProcess.push(performance.now() - t);
      }
      status = { batchJson: timing(batchJson), allJson: timing(allJson), inProcess: timing(inProcess) };
      const base = `${fleet.serveUrl}/dashboard/batches`;
      pages = {
        batches: await timeRequests(base, 15),
        batch: await timeRequests(`${base}/${CATALOGUE_BATCH}`, 15),
        batchLastPage: await timeRequests(`${base}/${CATALOGUE_BATCH}?page=${Math.ceil(o.images / 50)}`, 15),
        batchFailed: await timeRequests(`${base}/${CATALOGUE_BATCH}?state=failed`, 15),
        batchSku: await timeRequests(`${base}/${CATALOGUE_BATCH}?q=sku-0${String(Math.floor(o.images / 3)).padStart(5, '0')}`, 15),
        batchFinished: await timeRequests(`${base}/${CATALOGUE_BATCH}?sort=finished&order=desc`, 15),
      };
      atEnd = await memoryBreakdown(rt, prefix);
    }
    const end = await redisMemory(statsRedis);
    peakUsedMemory = Math.max(peakUsedMemory, end.peak);
    const redisCpuMs = redisCpuBefore + (await redisCpu(statsRedis));
    const commands = { ...commandsBefore };
    addCounts(commands, await redisCommandStats(statsRedis));
    clearInterval(sampler);
    sampler = undefined;

    const unexpectedExits = fleet.unexpectedExits().map((fp) => `${fp.role}${fp.slot} ${JSON.stringify(fp.exit)}`);
    const uncleanStops = (await fleet.stopAll()).map((fp) => `${fp.role}${fp.slot} ${JSON.stringify(fp.exit)}`);
    const procs: ProcFigures[] = fleet.procs.map((fp) => ({
      name: fp.proc.name,
      peakRssBytes: fp.proc.usage().peakRssBytes,
      cpuMs: fp.proc.usage().cpuMs,
      endedBy: fp.endedByTest ?? 'itself',
    }));
    procs.push({ name: 'enqueue', peakRssBytes: enq.usage.peakRssBytes, cpuMs: enq.usage.cpuMs, endedBy: 'itself' });
    procs.push({ name: 'export', peakRssBytes: exp.usage.peakRssBytes, cpuMs: exp.usage.cpuMs, endedBy: 'itself' });
    const cpu = process.cpuUsage(harnessCpu0);
    const logProblems = await scanLogs(dir, [apiKey, hmacKey]);
    const aofBytes = (() => {
      try {
        const aofDir = join(redis.dir, 'appendonlydir');
        return readdirSync(aofDir).reduce((s, f) => s + statSync(join(aofDir, f)).size, 0);
      } catch {
        return 0;
      }
    })();

    return {
      images: o.images,
      enqueued,
      timeScale: o.timeScale,
      workers,
      records: tally.records,
      terminal: tally.terminal,
      lost: o.images - tally.terminal,
      states: tally.states,
      ambiguous: tally.ambiguous,
      createAccepted: stats.createAccepted,
      createPerInput: stats.createAccepted / o.images,
      duplicates: payments.duplicates,
      duplicatesWithoutAmbiguity: payments.duplicatesWithoutAmbiguity,
      unexplained: payments.unexplained.slice(0, 20),
      create429: stats.createRejected429,
      query429: stats.queries429,
      recordInfoCalls: stats.queries + stats.queries429,
      callbacksSent: stats.callbacksSent,
      callbacksFailed: stats.callbacksFailed,
      exported: checked.lines,
      exportMismatches: checked.mismatches.slice(0, 20),
      events,
      kills,
      redisRestarts,
      unexpectedExits,
      uncleanStops,
      logProblems,
      enqueueMs: enq.ms,
      drainMs,
      wallMs: allDone - t0,
      imagesPerSecond: o.images / (drainMs / 1000),
      loadavg: { before: loadBefore, after: loadavg() },
      procs,
      harnessCpuMs: (cpu.user + cpu.system) / 1000,
      redis: { peakUsedMemory, baseUsedMemory, endUsedMemory: end.used, cpuMs: redisCpuMs, commands, aofBytes, afterEnqueue, atEnd },
      export: { ms: exp.ms, peakRssBytes: exp.usage.peakRssBytes, bytes: statSync(exportFile).size },
      status,
      pages,
      dir,
    };
  } finally {
    forget();
    if (sampler) clearInterval(sampler);
    for (const fp of fleet?.procs ?? []) if (fp.exit === null) fp.proc.child.kill('SIGKILL');
    await rt?.close().catch(() => undefined);
    await sim?.stop();
    await redis?.destroy();
  }
}

/** Removes the run's folder (logs, the input file, the export). */
export function removeRunDir(run: Pick<CatalogueRun, 'dir'>): void {
  rmSync(run.dir, { recursive: true, force: true });
}
