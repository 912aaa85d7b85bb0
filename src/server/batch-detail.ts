/**
 * Routes of one batch's page (registered in the dashboard scope, so behind its auth). Each is an ordinary fastify
 * route with a name in `config.name`; `config.write: true` marks the one that changes anything.
 *
 * | route | name | write |
 * |---|---|---|
 * | `GET /dashboard/batches/:id` (`?state=&failCode=&group=&q=&sort=line\|finished&order=asc\|desc&page=&size=`) | batch-page | no |
 * | `GET /dashboard/batches/:id/compare/:jobId` | batch-compare | no |
 * | `GET /dashboard/batches/:id/thumbs/:jobId/:file` (`in.webp`, `out.webp`, `in-small.webp`, `out-small.webp`) | batch-thumb | no |
 * | `GET /api/batches/:id/records` (same filters; JSON `{ total, capped, offset, page, pageSize, pages, records }`; a page past the end is the last page, as on the HTML page) | batch-records | no |
 * | `POST /api/batches/:id/retry` (same filters: retries the failed/timed_out images among them) | batch-retry | yes |
 *
 * Writes from another site are refused for every route of the dashboard in one place (access.ts `crossSiteReason`).
 *
 * The export of a filtered set is `GET /api/batches/:id/export?format=&<filters>` (batches.ts).
 *
 * Thumbnails are read where the workers stored them: from OUTPUT_DIR (or a file:// OUTPUT_URL) on this machine, or
 * through the S3 storage of an s3:// OUTPUT_URL (opened on first use, closed with the server).
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { retry } from '../control/batches.js';
import { checkBatchId } from '../queue/identity.js';
import {
  ensureIndex,
  failureGroups,
  finishedPerMinute,
  queryAll,
  queryRecords,
  QueryError,
  type QueryPage,
  type RecordQuery,
} from '../results/batch-query.js';
import { STATES, type RecordState, type ResultRecord } from '../results/record.js';
import type { ResultStore } from '../results/store.js';
import type { Runtime } from '../runtime.js';
import { THUMB_FILES, thumbKey, thumbPath, type ThumbFile } from '../results/thumbs.js';
import { openStorage, type Storage } from '../storage/index.js';
import { noEtaReason } from '../results/status-view.js';
import { batchUrls, queryString, renderBatchPage, renderComparePage } from './batch-page.js';
import { readLanes } from './lanes.js';
import { readOnlyMessage } from './access.js';
import { MAX_LINE_CHARS } from '../producer/types.js';
import { formatCount } from '../config/units.js';

export interface BatchDetailOptions {
  /** Offer and accept "retry these". @defaultValue `false` */
  write?: boolean;
}

/**
 * Longest search text: an input line's limit (producer MAX_LINE_CHARS), so a whole presigned URL pasted from the
 * input file can be searched (a text with a `/` must be contained in the input; batch-query.ts). It was 200, which
 * refused most signed S3 and CDN URLs.
 */
export const MAX_SEARCH_CHARS = MAX_LINE_CHARS;

/** Rows per page unless `?size=` (10-500). */
export const DEFAULT_PAGE_SIZE = 50;
const JOB_ID = /^[0-9a-f]{24}$/;

type Query = Record<string, string | undefined>;

/**
 * Page `number` (1-based) of `size` records matching `query`; a page past the end (a typed page=999, or the set
 * shrank) is answered with the last page, the same for the HTML page and the JSON API. Resolves with the page and
 * its number after clamping (1 for an empty set). Throws QueryError like queryRecords.
 */
export async function pageOf(store: ResultStore, batchId: string, query: RecordQuery, number: number, size: number): Promise<{ page: QueryPage; number: number }> {
  let page = await queryRecords(store, batchId, query, (number - 1) * size, size);
  if (page.records.length === 0 && page.offset > 0 && page.offset >= page.total) {
    number = Math.max(1, Math.ceil(page.total / size));
    page = page.total > 0 ? await queryRecords(store, batchId, query, (number - 1) * size, size) : { ...page, offset: 0 };
  }
  return { page, number };
}

/** A URL query as a RecordQuery and page, or the reason it is not one (naming the parameter). */
export function parseRecordQuery(raw: Query): { query: RecordQuery; page: number; size: number } {
  const query: RecordQuery = {};
  const bad = (name: string, why: string): never => {
    throw new QueryError(`${name}: ${why}`);
  };
  const one = (name: string): string | undefined => {
    const v = raw[name];
    if (Array.isArray(v)) bad(name, 'given more than once');
    return v === undefined || v === '' ? undefined : v;
  };
  const state = one('state');
  if (state !== undefined) {
    if (!STATES.includes(state as RecordState)) bad('state', `"${state}" must be one of ${STATES.join(', ')}`);
    query.state = state as RecordState;
  }
  const failCode = one('failCode');
  if (failCode !== undefined) query.failCode = failCode.length > 64 ? bad('failCode', 'longer than 64 characters') : failCode;
  const group = one('group');
  if (group !== undefined) query.group = /^([0-9a-f]{12}|other)$/.test(group) ? group : bad('group', `"${group}" is not a failure group id`);
  const q = one('q');
  if (q !== undefined && q.trim() !== '') query.search = q.length > MAX_SEARCH_CHARS ? bad('q', `longer than ${MAX_SEARCH_CHARS} characters (a whole input line's limit)`) : q.trim();
  const sort = one('sort');
  if (sort !== undefined) {
    if (sort !== 'line' && sort !== 'finished') bad('sort', `"${sort}" must be line or finished`);
    query.sort = sort as 'line' | 'finished';
  }
  const order = one('order');
  if (order !== undefined) {
    if (order !== 'asc' && order !== 'desc') bad('order', `"${order}" must be asc or desc`);
    if (order === 'desc') query.desc = true;
  }
  const int = (name: string, min: number, max: number, fallback: number): number => {
    const v = one(name);
    if (v === undefined) return fallback;
    if (!/^\d{1,7}$/.test(v) || Number(v) < min || Number(v) > max) bad(name, `"${v}" must be a whole number from ${min} to ${max}`);
    return Number(v);
  };
  return { query, page: int('page', 1, 1_000_000, 1), size: int('size', 10, 500, DEFAULT_PAGE_SIZE) };
}

/** True when the URL query sets any filter (so an export or retry is of a subset). */
export function hasFilters(raw: Query): boolean {
  return ['state', 'failCode', 'group', 'q'].some((k) => raw[k] !== undefined && raw[k] !== '');
}

interface IdParams {
  id: string;
}

async function requireKnownBatch(rt: Runtime, id: string, reply: FastifyReply, html: boolean): Promise<boolean> {
  const problem = checkBatchId(id);
  const missing = problem === null && !(await rt.store.batchExists(id));
  if (problem === null && !missing) return true;
  const error = problem ?? `no batch named ${id} (it may have expired after RESULT_RETENTION)`;
  if (html) await reply.code(problem ? 400 : 404).type('text/plain; charset=utf-8').send(error);
  else await reply.code(problem ? 400 : 404).send({ error });
  return false;
}

export function registerBatchDetail(app: FastifyInstance, rt: Runtime, options: BatchDetailOptions = {}): void {
  let s3: Promise<Storage | null> | undefined;
  /** The S3 storage thumbnails are read from (null unless OUTPUT_URL is s3://). */
  const s3Storage = (): Promise<Storage | null> => {
    s3 ??= rt.config.output?.kind === 's3' ? openStorage(rt.config) : Promise.resolve(null);
    return s3;
  };
  app.addHook('onClose', async () => {
    (await s3?.catch(() => null))?.close();
  });
  /** Whether the thumbnail `file` of a succeeded, stored image is there (OUTPUT_DIR, else the object store). */
  async function hasThumb(batchId: string, r: ResultRecord, file: ThumbFile): Promise<boolean> {
    if (r.state !== 'succeeded') return false;
    const outputDir = rt.config.outputDir;
    if (outputDir) return r.outputPath ? (await stat(thumbPath(outputDir, batchId, r.jobId, file)).catch(() => null)) !== null : false;
    const storage = r.outputUrl ? await s3Storage() : null;
    return storage ? storage.exists(thumbKey(batchId, r.jobId, file)).catch(() => false) : false;
  }
  const write = options.write ?? false;

  // A form posts "retry these" as urlencoded; its fields are not used (the filters are in the URL).
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(String(body))));
  });

  app.get<{ Params: IdParams; Querystring: Query }>(
    '/dashboard/batches/:id',
    { config: { name: 'batch-page', write: false } },
    async (request, reply) => {
      const { id } = request.params;
      if (!(await requireKnownBatch(rt, id, reply, true))) return reply;
      await ensureIndex(rt.store, id);
      const now = Date.now();
      let parsed: ReturnType<typeof parseRecordQuery> = { query: {}, page: 1, size: DEFAULT_PAGE_SIZE };
      let error: string | undefined;
      let page;
      try {
        parsed = parseRecordQuery(request.query);
        const clamped = await pageOf(rt.store, id, parsed.query, parsed.page, parsed.size);
        page = clamped.page;
        parsed.page = clamped.number;
      } catch (e) {
        if (!(e instanceof QueryError)) throw e;
        error = e.message;
        page = { total: 0, capped: false, offset: 0, records: [] };
      }
      const [summary, groups, minutes, lanes] = await Promise.all([
        rt.store.getSummary(id, now),
        failureGroups(rt.store, id),
        finishedPerMinute(rt.store, id),
        readLanes(rt),
      ]);
      if (!summary) return reply.code(404).type('text/plain; charset=utf-8').send(`no batch named ${id}`);
      const thumbs = new Set<string>();
      // One stat or HEAD per stored output on this page (at most the page size); a store that cannot answer shows none.
      await Promise.all(
        page.records.map(async (r) => {
          if (await hasThumb(id, r, 'out-small.webp')) thumbs.add(r.jobId);
        }),
      );
      const retried = request.query.retried;
      const html = renderBatchPage({
        summary,
        query: parsed.query,
        page,
        pageSize: parsed.size,
        groups,
        minutes,
        thumbs,
        write,
        now,
        notice: retried !== undefined && /^\d{1,9}$/.test(retried) ? `${formatCount(Number(retried), 'image')} of this view given a new task.` : undefined,
        error,
        publicPath: request.publicPath,
        noEta: noEtaReason(summary, lanes),
      });
      return reply
        .code(error ? 400 : 200)
        .type('text/html; charset=utf-8')
        .header('cache-control', 'no-store')
        .send(html);
    },
  );

  app.get<{ Params: IdParams; Querystring: Query }>(
    '/api/batches/:id/records',
    { config: { name: 'batch-records', write: false } },
    async (request, reply) => {
      const { id } = request.params;
      if (!(await requireKnownBatch(rt, id, reply, false))) return reply;
      await ensureIndex(rt.store, id);
      try {
        const { query, page, size } = parseRecordQuery(request.query);
        const { page: result, number } = await pageOf(rt.store, id, query, page, size);
        return await reply.header('cache-control', 'no-store').send({ ...result, page: number, pageSize: size, pages: Math.max(1, Math.ceil(result.total / size)) });
      } catch (e) {
        if (e instanceof QueryError) return reply.code(400).send({ error: e.message });
        throw e;
      }
    },
  );

  app.post<{ Params: IdParams; Querystring: Query }>(
    '/api/batches/:id/retry',
    { config: { name: 'batch-retry', write: true } },
    async (request, reply) => {
      if (!write) {
        return reply.code(405).send({ error: readOnlyMessage('POST', '/api/batches/:id/retry') });
      }
      const { id } = request.params;
      if (!(await requireKnownBatch(rt, id, reply, false))) return reply;
      await ensureIndex(rt.store, id);
      let query: RecordQuery;
      try {
        query = parseRecordQuery(request.query).query;
      } catch (e) {
        if (e instanceof QueryError) return reply.code(400).send({ error: e.message });
        throw e;
      }
      const result = await retry(rt, id, { records: queryAll(rt.store, id, query) });
      request.log.info({ batchId: id, query, ...result }, 'retry from the batch page');
      const wantsHtml = (request.headers.accept ?? '').includes('text/html');
      if (!wantsHtml) return reply.send(result);
      // Back to the page, with the public prefix (public-path.ts).
      return reply.redirect(`${batchUrls(request.publicPath, id).page}${queryString(query, { retried: result.retried })}`, 303);
    },
  );

  app.get<{ Params: IdParams & { jobId: string }; Querystring: Query }>(
    '/dashboard/batches/:id/compare/:jobId',
    { config: { name: 'batch-compare', write: false } },
    async (request, reply) => {
      const { id, jobId } = request.params;
      if (!(await requireKnownBatch(rt, id, reply, true))) return reply;
      const record = JOB_ID.test(jobId) ? await rt.store.getRecord(id, jobId) : null;
      if (!record) return reply.code(404).type('text/plain; charset=utf-8').send(`no image ${jobId} in batch ${id}`);
      const back = new URLSearchParams(request.query as Record<string, string>).toString();
      return reply
        .type('text/html; charset=utf-8')
        .header('cache-control', 'no-store')
        .send(renderComparePage({ record, back: back === '' ? '' : `?${back}`, publicPath: request.publicPath, frames: (await hasThumb(id, record, 'in.webp')) && (await hasThumb(id, record, 'out.webp')) }));
    },
  );

  app.get<{ Params: IdParams & { jobId: string; file: string } }>(
    '/dashboard/batches/:id/thumbs/:jobId/:file',
    { config: { name: 'batch-thumb', write: false } },
    async (request, reply) => {
      const { id, jobId, file } = request.params;
      const outputDir = rt.config.outputDir;
      if (checkBatchId(id) !== null || !JOB_ID.test(jobId) || !THUMB_FILES.includes(file as ThumbFile)) {
        return reply.code(404).send({ error: 'no such thumbnail' });
      }
      const storage = outputDir ? null : await s3Storage();
      if (storage) {
        let found: Awaited<ReturnType<Storage['get']>>;
        try {
          found = await storage.get(thumbKey(id, jobId, file as ThumbFile));
        } catch (e) {
          return reply.code(502).send({ error: `thumbnail unavailable: ${(e as Error).message}` });
        }
        if (!found) return reply.code(404).send({ error: 'no such thumbnail (not made yet, or the output was not downloaded)' });
        return reply
          .type('image/webp')
          .header('content-length', found.size)
          .header('cache-control', 'private, max-age=3600')
          .send(found.body);
      }
      if (!outputDir) return reply.code(404).send({ error: 'no thumbnails: neither OUTPUT_URL nor OUTPUT_DIR is set for upscale serve' });
      const path = thumbPath(outputDir, id, jobId, file as ThumbFile);
      const st = await stat(path).catch(() => null);
      if (!st?.isFile()) return reply.code(404).send({ error: 'no such thumbnail (not made yet, or the output was not downloaded)' });
      return reply
        .type('image/webp')
        .header('content-length', st.size)
        .header('cache-control', 'private, max-age=3600')
        .send(createReadStream(path));
    },
  );
}
