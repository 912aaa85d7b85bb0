/**
 * Batch routes of the dashboard: the HTML page `/dashboard/batches`, JSON `/api/batches` and `/api/batches/:id`,
 * and the export `/api/batches/:id/export?format=jsonl|csv[&bom=1][&state=&failCode=&group=&q=&sort=&order=]` (the
 * whole batch by line, or exactly a filtered set as the batch page shows it), streamed from Redis with backpressure;
 * `bom=1` starts a CSV with a UTF-8 byte order mark, for Excel (the pages' "Excel" links).
 */
import { PassThrough } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { checkBatchId } from '../queue/identity.js';
import { EXPORT_FORMATS, exportBatch, type ExportFormat } from '../results/export.js';
import type { Runtime } from '../runtime.js';
import { ensureIndex, queryAll, QueryError, type RecordQuery } from '../results/batch-query.js';
import { hasFilters, parseRecordQuery } from './batch-detail.js';
import { isFinished, renderBatchesPage } from './batches-page.js';
import { readLanes } from './lanes.js';
import { withEta } from '../results/status-view.js';
import { pilotOutcome, type PilotOutcome } from '../batch/pilot.js';
import { outboxSummary } from '../notify/index.js';
import { getRunway } from '../worker/runway.js';
import { registerBatchControls } from './batch-controls.js';

export interface BatchesOptions {
  /** Finished batches listed on the page unless `?all=1` (running ones are always listed). @defaultValue `50` */
  maxFinished?: number;
  /** Seconds between reloads of the page (`?refresh=N` overrides, 0 = none). @defaultValue `5` */
  refreshSeconds?: number;
  /** Pause/resume buttons per batch (`upscale serve --dashboard-write`). @defaultValue `false` */
  write?: boolean;
}

const CONTENT_TYPES: Record<ExportFormat, string> = {
  jsonl: 'application/x-ndjson; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
};

interface IdParams {
  id: string;
}

function refreshOf(query: Record<string, unknown>, fallback: number): number {
  const raw = query.refresh;
  if (typeof raw !== 'string' || !/^\d{1,4}$/.test(raw)) return fallback;
  const n = Number(raw);
  return n === 0 ? 0 : Math.min(3600, Math.max(2, n));
}

export function registerBatches(app: FastifyInstance, rt: Runtime, options: BatchesOptions = {}): void {
  const maxFinished = options.maxFinished ?? 50;
  registerBatchControls(app, rt, options.write ?? false);

  app.get('/dashboard/batches', async (request, reply) => {
    const query = request.query as Record<string, unknown>;
    const now = Date.now();
    const [all, lanes, notifications, credits] = await Promise.all([rt.store.listBatches(now), readLanes(rt), outboxSummary(rt, { limit: 10 }), getRunway(rt)]);
    let finishedShown = 0;
    const batches =
      query.all === '1' ? all : all.filter((b) => !isFinished(b) || finishedShown++ < maxFinished);
    const pilots: Record<string, PilotOutcome> = {};
    for (const b of batches) {
      if (b.pilot === null || b.pilot === undefined) continue;
      const p = await pilotOutcome(rt, b.batchId, b);
      if (p) pilots[b.batchId] = p;
    }
    const html = renderBatchesPage({
      batches,
      lanes,
      now,
      notifications,
      pilots,
      credits,
      refreshSeconds: refreshOf(query, options.refreshSeconds ?? 5),
      hidden: all.length - batches.length,
      write: options.write ?? false,
      publicPath: request.publicPath,
    });
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(html);
  });

  app.get('/api/batches', async (_request, reply) => {
    const now = Date.now();
    const [batches, lanes] = await Promise.all([rt.store.listBatches(now), readLanes(rt)]);
    return reply.header('cache-control', 'no-store').send({ batches: batches.map((b) => withEta(b, lanes)), lanes });
  });

  app.get<{ Params: IdParams }>('/api/batches/:id', async (request, reply) => {
    const { id } = request.params;
    const problem = checkBatchId(id);
    if (problem) return reply.code(400).send({ error: problem });
    const [summary, lanes] = await Promise.all([rt.store.getSummary(id), readLanes(rt)]);
    if (!summary) return reply.code(404).send({ error: `no batch named ${id}` });
    return reply.header('cache-control', 'no-store').send(withEta(summary, lanes));
  });

  app.get<{ Params: IdParams; Querystring: Record<string, string | undefined> }>(
    '/api/batches/:id/export',
    async (request, reply) => {
      const { id } = request.params;
      const problem = checkBatchId(id);
      if (problem) return reply.code(400).send({ error: problem });
      const format = (request.query.format ?? 'jsonl') as ExportFormat;
      if (!EXPORT_FORMATS.includes(format)) {
        return reply.code(400).send({ error: `format must be one of ${EXPORT_FORMATS.join(', ')}` });
      }
      const bomParam = request.query.bom;
      if (bomParam !== undefined && bomParam !== '0' && bomParam !== '1') {
        return reply.code(400).send({ error: `bom must be 1 (a UTF-8 byte order mark, for Excel) or 0 (got "${bomParam}")` });
      }
      const bom = bomParam === '1';
      if (bom && format !== 'csv') return reply.code(400).send({ error: 'bom=1 is for format=csv (JSON Lines has no byte order mark)' });
      // With filters (the batch page's "export these"): exactly that set, in its order, from a snapshot.
      let query: RecordQuery | null = null;
      try {
        if (hasFilters(request.query) || request.query.sort || request.query.order) query = parseRecordQuery(request.query).query;
      } catch (e) {
        if (e instanceof QueryError) return reply.code(400).send({ error: e.message });
        throw e;
      }
      if (!(await rt.store.batchExists(id))) return reply.code(404).send({ error: `no batch named ${id}` });
      if (query) await ensureIndex(rt.store, id);
      const records = query ? queryAll(rt.store, id, query) : undefined;
      const out = new PassThrough();
      let ended = false;
      // A client that goes away must not leave the export waiting for 'drain' forever.
      reply.raw.once('close', () => {
        if (!ended) out.destroy(new Error('export: the client closed the connection'));
      });
      exportBatch(rt.store, id, { format, bom, out, ...(records ? { records } : {}) }).then(
        (count) => {
          ended = true;
          out.end();
          request.log.info({ batchId: id, format, records: count }, 'batch exported');
        },
        (err: unknown) => {
          ended = true;
          request.log.warn({ batchId: id, err }, 'export stopped');
          out.destroy(err instanceof Error ? err : new Error(String(err)));
        },
      );
      return reply
        .type(CONTENT_TYPES[format])
        .header('content-disposition', `attachment; filename="${id}${query ? '-filtered' : ''}.${format}"`)
        .header('cache-control', 'no-store')
        .send(out);
    },
  );
}
