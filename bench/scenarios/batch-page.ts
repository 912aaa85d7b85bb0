/**
 * Scenario 5, the batch page at 100,000 records: a batch of `records` images (each with an `sku` meta value; 70%
 * succeeded, 10% failed with 422 in two reasons, 5% failed 500, 5% timed out, 10% still polling) is written through
 * the results store (so the index is kept as in production), then the page `/dashboard/batches/:id` is requested
 * through the app (`inject`: routing, auth hooks, Redis, HTML) for a set of views: unfiltered first and deep pages,
 * a state, a failCode, a failure group, an SKU search, a broad search (capped), sorting by finish time. Baseline,
 * in the same run: the same views answered the obvious way, reading every record (HSCAN) per request, filtering,
 * sorting and slicing in the process. Also reported: Redis memory of the index beside the records.
 */
import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/log.js';
import { failureGroups } from '../../src/results/batch-query.js';
import type { ResultRecord } from '../../src/results/record.js';
import { createRuntime } from '../../src/runtime.js';
import { buildApp } from '../../src/server/app.js';
import { deletePrefix, freshPrefix, redisClient, REDIS_URL } from '../lib/redis.js';
import { finish, log, quantile, type Metric, type ScenarioResult } from '../lib/report.js';

export interface BatchPageOptions {
  records: number;
  /** Requests per view for ours. @defaultValue 15 */
  repeats?: number;
}

const BATCH = 'bench-catalog';
const id = (n: number) => n.toString(16).padStart(24, '0');

function planOf(i: number): Partial<ResultRecord> | null {
  const k = i % 20;
  const at = 1_750_000_000_000 + ((i * 7919) % 100_000) * 600;
  if (k < 14) return { state: 'succeeded', creditsConsumed: 20, completedAt: at, taskId: `task-${i}` };
  if (k === 14) return { state: 'failed', failCode: '422', failMsg: 'The input image is not supported', completedAt: at, taskId: `task-${i}` };
  if (k === 15) return { state: 'failed', failCode: '422', failMsg: 'Image too large', completedAt: at, taskId: `task-${i}` };
  if (k === 16) return { state: 'failed', failCode: '500', failMsg: 'Internal error', completedAt: at, taskId: `task-${i}` };
  if (k === 17) return { state: 'timed_out', failCode: 'timed_out', failMsg: 'task still generating', completedAt: at, taskId: `task-${i}` };
  return { state: 'polling', taskId: `task-${i}` };
}

/** A view: the page's query string and the same filter for the baseline. */
interface View {
  name: string;
  qs: string;
  match: (r: ResultRecord) => boolean;
  sort: 'line' | 'finished';
  desc?: boolean;
  page?: number;
}

/** The baseline: every record read (HSCAN pages of 1000), filtered, sorted and sliced, per request. */
async function naivePage(rt: ReturnType<typeof createRuntime>, v: View): Promise<{ total: number; ids: string[] }> {
  const rows: ResultRecord[] = [];
  for await (const r of rt.store.records(BATCH, 1000)) if (v.match(r)) rows.push(r);
  const key = (r: ResultRecord) => (v.sort === 'finished' ? (r.completedAt ?? r.updatedAt) : (r.line ?? 0));
  rows.sort((a, b) => key(a) - key(b) || a.jobId.localeCompare(b.jobId));
  if (v.desc) rows.reverse();
  const from = ((v.page ?? 1) - 1) * 50;
  return { total: rows.length, ids: rows.slice(from, from + 50).map((r) => r.jobId) };
}

export async function runBatchPage(o: BatchPageOptions): Promise<ScenarioResult> {
  const started = Date.now();
  const repeats = o.repeats ?? 15;
  const prefix = freshPrefix('s5');
  const redis = redisClient();
  const rt = createRuntime(loadConfig({}, { REDIS_URL, UPSCALE_PREFIX: prefix, LOG_LEVEL: 'silent' }), { log: createLogger({ level: 'silent' }) });
  const app = buildApp(rt, { logger: createLogger({ level: 'silent' }), callbacks: false, metrics: false });
  try {
    log(`scenario 5: writing ${o.records.toLocaleString('en-US')} records through the store`);
    const t0 = Date.now();
    for (let from = 0; from < o.records; from += 1000) {
      const images = Array.from({ length: Math.min(1000, o.records - from) }, (_, k) => {
        const i = from + k;
        return { jobId: id(i + 1), input: `https://images.example.com/catalog/IMG_${String(i).padStart(6, '0')}.jpg`, model: 'topaz/image-upscale' as const, factor: '2' as const, line: i + 2, meta: { sku: String(100000 + i) } };
      });
      await rt.store.createRecords(BATCH, images);
      await Promise.all(
        images.map((img, k) => {
          const patch = planOf(from + k);
          return patch ? rt.store.transition(BATCH, img.jobId, patch, { now: patch.completedAt ?? Date.now() }) : Promise.resolve(null);
        }),
      );
    }
    const writeS = (Date.now() - t0) / 1000;
    log(`scenario 5: written in ${writeS.toFixed(1)} s; measuring views`);
    await app.ready();
    const group = (await failureGroups(rt.store, BATCH)).find((g) => g.reason === 'Image too large');
    const views: View[] = [
      { name: 'all, page 1', qs: '', match: () => true, sort: 'line' },
      { name: 'all, last page', qs: `?page=${Math.ceil(o.records / 50)}`, match: () => true, sort: 'line', page: Math.ceil(o.records / 50) },
      { name: 'state=failed', qs: '?state=failed', match: (r) => r.state === 'failed', sort: 'line' },
      { name: 'failCode=422', qs: '?failCode=422', match: (r) => r.failCode === '422', sort: 'line' },
      { name: 'failure group', qs: `?group=${group?.id ?? ''}`, match: (r) => r.failMsg === 'Image too large', sort: 'line' },
      { name: 'search sku', qs: `?q=${100000 + Math.floor(o.records * 0.54321)}`, match: (r) => r.meta.sku === String(100000 + Math.floor(o.records * 0.54321)), sort: 'line' },
      { name: 'search "10" (broad)', qs: '?q=10', match: (r) => (r.meta.sku ?? '').startsWith('10'), sort: 'line' },
      { name: 'finished desc', qs: '?sort=finished&order=desc', match: (r) => r.state !== 'polling', sort: 'finished', desc: true },
      { name: 'failed, search, finished', qs: '?state=failed&q=1012&sort=finished', match: (r) => r.state === 'failed' && (r.meta.sku ?? '').startsWith('1012'), sort: 'finished' },
    ];
    const per: Record<string, { p50: number | null; p95: number | null; naiveMs: number; total: string }> = {};
    const oursAll: number[] = [];
    const naiveAll: number[] = [];
    for (const v of views) {
      const times: number[] = [];
      let total = '';
      await app.inject({ method: 'GET', url: `/dashboard/batches/${BATCH}${v.qs}` }); // warm-up, untimed
      for (let i = 0; i < repeats; i++) {
        const t = performance.now();
        const res = await app.inject({ method: 'GET', url: `/dashboard/batches/${BATCH}${v.qs}` });
        times.push(performance.now() - t);
        if (res.statusCode !== 200) throw new Error(`${v.name}: HTTP ${res.statusCode} ${res.body.slice(0, 200)}`);
        total = /class="range">([^<]*)</.exec(res.body)?.[1] ?? '';
      }
      const t = performance.now();
      await naivePage(rt, v);
      const naiveMs = performance.now() - t;
      oursAll.push(...times);
      naiveAll.push(naiveMs);
      per[v.name] = { p50: quantile(times, 0.5), p95: quantile(times, 0.95), naiveMs: Math.round(naiveMs), total };
      log(`  ${v.name}: p50 ${per[v.name]!.p50?.toFixed(1)} ms, p95 ${per[v.name]!.p95?.toFixed(1)} ms (${total}); HSCAN per request ${naiveMs.toFixed(0)} ms`);
    }
    const ixKeys: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${rt.store.keys.index(BATCH)}*`, 'COUNT', 1000);
      cursor = next;
      ixKeys.push(...keys);
    } while (cursor !== '0');
    const usage = async (k: string) => Number((await redis.call('MEMORY', 'USAGE', k, 'SAMPLES', '0')) ?? 0);
    let indexBytes = 0;
    for (const k of ixKeys) indexBytes += await usage(k);
    const recordBytes = await usage(rt.store.keys.records(BATCH));
    const worstP95 = Math.max(...Object.values(per).map((p) => p.p95 ?? 0));
    const metrics: Metric[] = [
      {
        name: `batch page, p95 of the slowest view (${views.length} views × ${repeats})`,
        unit: 'ms',
        ours: Math.round(worstP95 * 10) / 10,
        baseline: Math.round((quantile(naiveAll, 0.5) ?? 0) * 10) / 10,
        better: 'lower',
        target: { text: '< 300 ms', ok: (v) => v < 300 },
        note: 'baseline: median over the views of reading every record per request (HSCAN), filtering and sorting in the process',
      },
      {
        name: 'batch page, median over every request',
        unit: 'ms',
        ours: Math.round((quantile(oursAll, 0.5) ?? 0) * 10) / 10,
        baseline: Math.round((quantile(naiveAll, 0.5) ?? 0) * 10) / 10,
        better: 'lower',
      },
      {
        name: 'index memory per record (vs the record itself)',
        unit: 'bytes',
        ours: Math.round(indexBytes / o.records),
        baseline: Math.round(recordBytes / o.records),
        better: 'lower',
        note: 'baseline column: the JSON record in the records hash; the index is extra memory, removed with the batch',
      },
    ];
    return {
      id: 5,
      title: `batch page at ${o.records.toLocaleString('en-US')} records`,
      setup: { records: o.records, repeats, pageSize: 50 },
      metrics: metrics.map(finish),
      details: { views: per, writeS, indexKeys: ixKeys.length, indexBytes, recordBytes },
      wallMs: Date.now() - started,
    };
  } finally {
    await app.close();
    await rt.close();
    await deletePrefix(redis, prefix);
    redis.disconnect();
  }
}
