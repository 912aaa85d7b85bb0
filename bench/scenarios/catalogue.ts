/**
 * Scenario 7, `catalogue`: N images (100,000 by default) end to end through four `upscale worker` processes and
 * `upscale serve` with signed callbacks, against the light simulator at a compressed time scale, while two workers
 * are SIGKILLed (and restarted) and the run's own Redis (AOF on) is restarted once; then what a user sees at that
 * size. The rig and the checks are bench/lib/catalogue.ts (shared with test/chaos/catalogue.test.ts).
 *
 * There is no baseline process here: the figures are judged against targets (lost 0, paid twice 0 apart from
 * recorded ambiguous attempts, no 429, a drain under 30 minutes on this machine) and read as per-image costs.
 */
import { runCatalogue, removeRunDir, type CatalogueRun, type MemoryBreakdown, type Timing } from '../lib/catalogue.js';
import { finish, log, MB, type Metric, type ScenarioResult } from '../lib/report.js';

export interface CatalogueScenarioOptions {
  images: number;
  timeScale: number;
}

const row = (name: string, unit: string, ours: number | null, o: Partial<Metric> = {}): Metric => ({ name, unit, ours, baseline: null, better: 'lower', ...o });
const eq0 = { text: '= 0', ok: (v: number) => v === 0 };

function perImage(b: MemoryBreakdown | null, images: number) {
  if (!b) return null;
  return {
    total: Math.round((b.records + b.index + b.jobs + b.scheduler + b.other) / images),
    records: Math.round(b.records / images),
    index: Math.round(b.index / images),
    jobs: Math.round(b.jobs / images),
    scheduler: Math.round(b.scheduler / images),
    other: Math.round(b.other / images),
    usedMemoryPerImage: Math.round(b.usedMemory / images),
    keys: b.keys,
  };
}

function timingRows(label: string, t: Timing | undefined, note: string): Metric[] {
  if (!t) return [];
  return [row(`${label}, p50`, 'ms', t.p50, { note }), row(`${label}, p95`, 'ms', t.p95)];
}

export async function runCatalogueScenario(o: CatalogueScenarioOptions): Promise<ScenarioResult> {
  const started = Date.now();
  log(`scenario 7 (catalogue): ${o.images} images, time scale ×${o.timeScale}, 4 workers, 2 SIGKILLs and a Redis restart`);
  // Under 30 minutes per 100,000 images on two cores of its own; hours when they are shared (load 20-30: 10-20
  // images/s). The bound is only there so a stuck run ends.
  const timeoutMs = Math.max(20 * 60_000, (o.images / 100_000) * 5 * 3_600_000);
  const r: CatalogueRun = await runCatalogue({ images: o.images, timeScale: o.timeScale, measure: true, timeoutMs, log: (m) => log(m) });
  const n = r.images;
  const workers = r.procs.filter((p) => p.name.startsWith('worker'));
  const serve = r.procs.find((p) => p.name === 'serve');
  const enqueue = r.procs.find((p) => p.name === 'enqueue');
  const workerCpu = workers.reduce((s, p) => s + p.cpuMs, 0);
  const atPeak = r.redis.peakUsedMemory - r.redis.baseUsedMemory;
  const afterEnqueue = perImage(r.redis.afterEnqueue, n);
  const atEnd = perImage(r.redis.atEnd, n);
  const pages = r.pages ?? {};
  const passed =
    r.lost === 0 && r.duplicatesWithoutAmbiguity === 0 && r.exported === n && r.exportMismatches.length === 0 && r.unexpectedExits.length === 0 && r.uncleanStops.length === 0 && r.logProblems.length === 0;
  if (passed) removeRunDir(r);
  else log(`scenario 7: a check failed; the processes' logs, the input and the export are in ${r.dir}`);

  const metrics: Metric[] = [
    row('images enqueued', 'count', r.enqueued, { better: 'higher', target: { text: `= ${n}`, ok: (v) => v === n } }),
    row('images terminal', 'count', r.terminal, { better: 'higher', target: { text: `= ${n}`, ok: (v) => v === n }, note: Object.entries(r.states).map(([s, c]) => `${s} ${c}`).join(', ') }),
    row('lost', 'count', r.lost, { target: eq0 }),
    row('accepted createTask per input', 'ratio', r.createPerInput, { note: `${r.createAccepted} for ${n} inputs` }),
    row('paid twice without a recorded ambiguous attempt', 'count', r.duplicatesWithoutAmbiguity, { target: eq0, note: `${r.duplicates} inputs created twice in all; ${r.ambiguous} ambiguous attempts recorded` }),
    row('429s received (createTask + recordInfo)', 'count', r.create429 + r.query429, { target: eq0 }),
    row('export: lines, and mismatches with the simulator', 'count', r.exportMismatches.length, { target: eq0, note: `${r.exported} lines for ${n} images` }),
    row('drain: first createTask → last image terminal', 'min', r.drainMs / 60_000, { target: { text: '< 30', ok: (v) => v < 30 }, note: `${r.imagesPerSecond.toFixed(1)} images/s; load ${r.loadavg.before.map((l) => l.toFixed(1)).join(' ')} → ${r.loadavg.after.map((l) => l.toFixed(1)).join(' ')}` }),
    row('`upscale enqueue` of the CSV, spawn to exit', 's', r.enqueueMs / 1000, { note: enqueue ? `peak RSS ${(enqueue.peakRssBytes / MB).toFixed(0)} MB` : '' }),
    row('Redis peak used_memory', 'MB', r.redis.peakUsedMemory / MB, { note: `empty server ${(r.redis.baseUsedMemory / MB).toFixed(1)} MB` }),
    row('Redis bytes per image at the peak (used_memory − empty)', 'B', atPeak / n),
    row('Redis per image after enqueue: records + jobs (+ index, scheduler, other)', 'B', afterEnqueue?.total ?? null, { note: afterEnqueue ? `records ${afterEnqueue.records}, jobs ${afterEnqueue.jobs}, index ${afterEnqueue.index}, scheduler ${afterEnqueue.scheduler}, other ${afterEnqueue.other} (MEMORY USAGE)` : '' }),
    row('Redis per image at the end, after the lanes\' job retention', 'B', atEnd?.total ?? null, { note: atEnd ? `records ${atEnd.records}, jobs ${atEnd.jobs}, index ${atEnd.index}, scheduler ${atEnd.scheduler}, other ${atEnd.other}; used_memory ${(r.redis.endUsedMemory / MB).toFixed(0)} MB` : '' }),
    ...timingRows('`upscale status --json --batch`, spawn to exit', r.status?.batchJson, '5 runs; the query alone (in process) p50 ' + (r.status?.inProcess.p50?.toFixed(1) ?? 'n/a') + ' ms'),
    ...timingRows('`upscale status --json` (every batch), spawn to exit', r.status?.allJson, '5 runs'),
    row('`upscale export` (JSONL) of every record, spawn to exit', 's', r.export.ms / 1000, { note: `${(r.export.bytes / MB).toFixed(0)} MB written` }),
    row('`upscale export` peak RSS', 'MB', r.export.peakRssBytes / MB),
    ...timingRows('batches page /dashboard/batches', pages.batches, '15 requests through the live `upscale serve`, after one warm-up'),
    ...timingRows('batch page /dashboard/batches/:id, first page', pages.batch, ''),
    ...timingRows('batch page, last page', pages.batchLastPage, ''),
    ...timingRows('batch page, state=failed', pages.batchFailed, ''),
    ...timingRows('batch page, one SKU (search)', pages.batchSku, ''),
    ...timingRows('batch page, by finish time, newest first', pages.batchFinished, ''),
    row('worker peak RSS (the largest of the 6 worker processes)', 'MB', Math.max(...workers.map((p) => p.peakRssBytes)) / MB, { note: workers.map((p) => `${p.name} ${(p.peakRssBytes / MB).toFixed(0)}`).join(', ') }),
    row('`upscale serve` peak RSS', 'MB', serve ? serve.peakRssBytes / MB : null),
    row('CPU per image: workers (all 6 processes)', 'ms', workerCpu / n),
    row('CPU per image: `upscale serve` (callbacks, pages)', 'ms', serve ? serve.cpuMs / n : null),
    row('CPU per image: Redis (main thread and AOF rewrites)', 'ms', r.redis.cpuMs / n, { note: `${Math.round(Object.values(r.redis.commands).reduce((a, b) => a + b, 0) / n)} commands per image` }),
    row('CPU per image: simulator and harness (the benchmark process)', 'ms', r.harnessCpuMs / n),
    row('processes that died unasked, or did not stop cleanly', 'count', r.unexpectedExits.length + r.uncleanStops.length, { target: eq0 }),
    row('crash lines or secrets in the logs', 'count', r.logProblems.length, { target: eq0 }),
  ];
  const { procs, dir: _dir, ...details } = r;
  return {
    id: 7,
    title: 'Catalogue: 100,000 images end to end, with faults',
    setup: {
      images: n,
      timeScale: o.timeScale,
      workers: r.workers,
      simulator: 'light mode (one real upscale per kind of output), kie.ai limits scaled, 1% of tasks fail with 422',
      redis: "the run's own redis-server, AOF everysec",
      faults: r.events,
      loadavg: r.loadavg,
    },
    metrics: metrics.map(finish),
    details: {
      ...details,
      procs: procs.map((p) => ({ ...p, peakRssMB: Math.round(p.peakRssBytes / MB), cpuPerImageMs: p.cpuMs / n })),
      redisPerImage: { afterEnqueue, atEnd },
      commandsPerImage: Object.fromEntries(
        Object.entries(r.redis.commands)
          .sort((a, b) => b[1] - a[1])
          .slice(0, 25)
          .map(([k, v]) => [k, Math.round((v / n) * 10) / 10]),
      ),
      passed,
    },
    wallMs: Date.now() - started,
  };
}
