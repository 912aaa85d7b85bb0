/**
 * `upscale demo` / `npm run demo`: the whole pipeline in one process against the simulator. It finds (or starts)
 * Redis, starts the simulator at a compressed time scale, the lanes (submit, poll, download) and the HTTP app
 * (dashboard and callback receiver), enqueues the sample images under a fresh UPSCALE_PREFIX, shows live progress,
 * prints a results table, writes the upscaled files to `<outDir>/<batch>/`, and cleans its Redis keys up.
 * Resolves with the exit code: 0 when every image ended as its sample expects, 1 otherwise, 130 when interrupted.
 * No network beyond loopback.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { loadConfig } from '../config/index.js';
import { createLogger } from '../log.js';
import { enqueue } from '../producer/index.js';
import { newBatchId } from '../queue/identity.js';
import { isTerminal, type ResultRecord } from '../results/record.js';
import { createRuntime, type Runtime } from '../runtime.js';
import { buildApp } from '../server/app.js';
import { startSimulator } from '../sim/index.js';
import { scaledPipelineEnv } from '../sim/scaled-config.js';
import { startWorkers } from '../worker/index.js';
import { EstimateBuilder } from '../worker/prices.js';
import { countRecords, ProgressDisplay } from './progress.js';
import { findRedis, freePort } from './redis.js';
import { buildRows, renderTable } from './report.js';
import { demoItems } from './samples.js';
import { formatCount, formatDuration } from '../config/units.js';

export interface DemoOptions {
  /** The batch folder goes under this. @defaultValue `output/demo` (relative to the current directory) */
  outDir?: string;
  /** The simulator's speed-up (and the pipeline's matching limits and intervals). @defaultValue `20` */
  timeScale?: number;
  /** Keep the dashboard running after the report until `signal` aborts. @defaultValue `false` */
  keep?: boolean;
  /** Port of the dashboard and callback receiver; 0 picks a free one. @defaultValue `0` */
  port?: number;
  /** Longest wait for the batch to finish. @defaultValue `100000` ms */
  deadlineMs?: number;
  /** Where REDIS_URL and PATH come from. */
  env: { REDIS_URL?: string | undefined; PATH?: string | undefined };
  /** Where the progress and the report go. @defaultValue `process.stdout` */
  out?: NodeJS.WriteStream;
  /** Aborted on SIGINT/SIGTERM: the demo stops waiting and cleans up. */
  signal?: AbortSignal;
}

async function collect(rt: Runtime, batchId: string): Promise<ResultRecord[]> {
  const records: ResultRecord[] = [];
  for await (const r of rt.store.records(batchId)) records.push(r);
  return records;
}

/** Every image is terminal, and every success has its download outcome (a file, or a failMsg). */
function settled(records: readonly ResultRecord[], total: number): boolean {
  return records.length >= total && records.every((r) => isTerminal(r.state) && (r.state !== 'succeeded' || r.outputPath !== null || r.failMsg !== null));
}

async function deleteKeys(rt: Runtime, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await rt.redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await rt.redis.unlink(...keys);
  } while (cursor !== '0');
}

export async function runDemo(options: DemoOptions): Promise<number> {
  const out = options.out ?? process.stdout;
  const say = (line = '') => out.write(line + '\n');
  const started = Date.now();
  const timeScale = options.timeScale ?? 20;
  const cleanups: (() => Promise<unknown>)[] = [];
  const cleanUp = async () => {
    for (const step of cleanups.reverse()) await step().catch(() => undefined);
  };
  try {
    say(`kie-upscale-queue demo: the whole pipeline against the simulator (time ×${timeScale}), no network beyond loopback`);
    const redis = await findRedis(options.env);
    cleanups.push(() => redis.stop());
    say(`  redis       ${redis.url} (${redis.how})`);

    const prefix = `demo-${randomBytes(4).toString('hex')}`;
    const apiKey = `sk-demo-${randomBytes(8).toString('hex')}`;
    const sim = await startSimulator({ apiKeys: [apiKey], timeScale, seed: 42, logger: pino({ level: 'silent' }) });
    cleanups.push(() => sim.stop());
    const port = options.port || (await freePort());
    const serverUrl = `http://127.0.0.1:${port}`;
    const batchId = newBatchId();
    const outDir = resolve(options.outDir ?? join('output', 'demo'));
    const batchDir = join(outDir, batchId);
    await mkdir(batchDir, { recursive: true });
    const tmp = await mkdtemp(join(tmpdir(), 'upscale-demo-'));
    cleanups.push(() => rm(tmp, { recursive: true, force: true }));

    const env = {
      ...scaledPipelineEnv({ simUrl: sim.url, apiKey, timeScale, redisUrl: redis.url, prefix }),
      OUTPUT_DIR: outDir,
      PUBLIC_BASE_URL: serverUrl,
      LOG_LEVEL: 'info',
    };
    const logFile = join(batchDir, 'demo.log');
    const log = createLogger({ level: 'info', destination: pino.destination({ dest: logFile, sync: true }), pretty: false });
    const rt = createRuntime(loadConfig({}, env), { log });
    cleanups.push(() => rt.close());
    cleanups.push(() => deleteKeys(rt, prefix));
    const app = buildApp(rt);
    await app.listen({ host: '127.0.0.1', port });
    cleanups.push(() => app.close());
    const workers = await startWorkers(rt, { concurrency: 8 });
    cleanups.push(() => workers.close(5000));
    say(`  simulator   ${sim.url} (kie.ai's API, uploads and sample images)`);
    say(`  dashboard   ${serverUrl}/ (Bull Board and batches; also receives the simulator's callbacks)`);
    say(`  workers     submit, poll and download lanes in this process; Redis prefix ${prefix} (deleted at the end)`);
    say(`  log         ${relative(process.cwd(), logFile) || logFile}`);

    const items = await demoItems(sim.url, tmp, await freePort());
    const estimate = new EstimateBuilder(rt.config.priceTable);
    for (const i of items) if (i.expect.state === 'succeeded') estimate.add(i.model, i.factor, { width: i.width, height: i.height });
    const good = items.filter((i) => i.expect.state === 'succeeded').length;
    say();
    say(`Batch ${batchId}: ${items.length} images (${good} to upscale, ${items.length - good} that must fail a pre-flight check); estimated ${estimate.result().credits} credits`);
    const enqueued = await enqueue(
      rt,
      items.map((i) => ({ input: i.input, model: i.model, ...(i.factor === null ? {} : { factor: i.factor }) })),
      { batchId },
    );
    for (const r of enqueued.rejected) say(`  ! line ${r.line} rejected at enqueue: ${r.input}: ${r.reason}`);

    const display = new ProgressDisplay(out);
    const deadline = started + (options.deadlineMs ?? 100_000);
    let records = await collect(rt, batchId);
    while (!settled(records, enqueued.enqueued) && Date.now() < deadline && !options.signal?.aborted) {
      display.update(countRecords(records, enqueued.enqueued));
      await sleep(250, undefined, { signal: options.signal }).catch(() => undefined);
      records = await collect(rt, batchId);
    }
    display.finish(countRecords(records, enqueued.enqueued));
    if (options.signal?.aborted) {
      say('Interrupted: stopping and cleaning up.');
      return 130;
    }
    const timedOut = !settled(records, enqueued.enqueued);

    const rows = await buildRows(items, new Map(records.map((r) => [r.input, r])));
    say();
    say(renderTable(rows, Math.max(100, out.columns || 140)));
    const files = (await readdir(batchDir)).filter((f) => !f.startsWith('.') && f !== 'demo.log');
    const stats = sim.stats();
    const summary = await rt.store.getSummary(batchId);
    say(`Outputs     ${relative(process.cwd(), batchDir) || batchDir}/ (${files.length} files)`);
    say(`kie.ai      ${stats.createAccepted} tasks created (none for the images refused before submission), ${stats.uploads} local files uploaded, ${summary?.creditsConsumed ?? 0} credits consumed`);
    const surprises = rows.filter((r) => r.surprise !== null);
    const extraTasks = stats.createAccepted - good;
    const elapsed = ((Date.now() - started) / 1000).toFixed(1);
    if (timedOut) say(`! the batch did not finish within ${formatDuration(options.deadlineMs ?? 100_000)}`);
    if (extraTasks !== 0) say(`! ${stats.createAccepted} tasks were created for ${good} images that should reach kie.ai`);
    const ok = surprises.length === 0 && !timedOut && extraTasks === 0 && enqueued.rejected.length === 0;
    say(ok ? `All ${items.length} images ended as expected in ${elapsed} s.` : `${formatCount(surprises.length, 'image')} did not end as expected (marked !) after ${elapsed} s.`);
    if (options.keep) {
      say(`The dashboard stays up at ${serverUrl}/ ; press Ctrl-C to stop and clean up.`);
      if (options.signal && !options.signal.aborted) await new Promise((r) => options.signal?.addEventListener('abort', r, { once: true }));
    }
    return ok ? 0 : 1;
  } finally {
    await cleanUp();
  }
}
