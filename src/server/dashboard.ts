/**
 * The private dashboard: Bull Board over every lane's queue at `/dashboard`, the batches page and its JSON/export
 * API (batches.ts), all behind HTTP basic auth when DASHBOARD_USER/DASHBOARD_PASSWORD are set.
 *
 * Read-only by default (`readOnlyMode` on every adapter). With `write` (`upscale serve --dashboard-write`) Bull
 * Board may retry failed jobs and remove completed or failed ones, nothing else (the exact list and how requests are
 * judged on the matched route: access.ts): pausing, emptying, obliterating, adding or editing jobs through it would
 * bypass the pipeline's own bookkeeping (`upscale pause|resume|retry|cancel` do that), so those stay refused.
 * Job data is shown with anything secret-looking redacted (job data never holds the key or a callback URL; this
 * is a second line of defence).
 */
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance } from 'fastify';
import { redactSecrets } from '../log.js';
import { LANES, type Lane } from '../queue/names.js';
import type { Runtime } from '../runtime.js';
import { BOARD_PATH, writeGuard } from './access.js';
import { basicAuthHook, dashboardCredentials } from './auth.js';
import { registerBatchDetail } from './batch-detail.js';
import { publicUrl, redirectTrailingSlash } from './public-path.js';
import { registerBatches, type BatchesOptions } from './batches.js';

export interface DashboardOptions {
  /** Allow Bull Board's retry and clean actions. @defaultValue `false` (read-only) */
  write?: boolean;
  batches?: BatchesOptions;
}

export { BOARD_PATH };

/**
 * The batch pages and documents people open by URL (HTML, JSON, the export); each also answers with a trailing slash
 * (a redirect). Every GET route under `/dashboard/batches` and `/api/batches` but the thumbnails is one
 * (test/integration/server-links.test.ts checks the routes registered against this list).
 */
export const BATCH_PAGES: readonly string[] = [
  '/dashboard/batches',
  '/dashboard/batches/:id',
  '/dashboard/batches/:id/compare/:jobId',
  '/api/batches',
  '/api/batches/:id',
  '/api/batches/:id/records',
  '/api/batches/:id/export',
];

const DESCRIPTIONS: Record<Lane, string> = {
  submit: 'createTask under the account budget; a job per image and generation',
  poll: 'recordInfo checks; a job parked (delayed) between checks of one task',
  download: 'downloads of results to OUTPUT_URL / OUTPUT_DIR',
};

const SECRET_KEY = /token|secret|password|api[-_]?key|authorization|callback[-_]?url|hmac/i;

/** A deep copy of job data with secret-looking keys and registered secrets / `t=` tokens redacted. */
export function scrubJobData(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactSecrets(value);
  if (depth > 8 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => scrubJobData(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    out[k] = SECRET_KEY.test(k) ? '[redacted]' : scrubJobData(v, depth + 1);
  }
  return out;
}

/**
 * Bull Board's page with the public prefix: its `<base href>` (from which the UI builds every API call, asset and
 * client-side route) and the Batches link. Bull Board renders both from a base path fixed at setup; the prefix
 * may differ per request (X-Forwarded-Prefix), so the rendered page is rewritten.
 */
export function withPublicPath(html: string, prefix: string): string {
  return html
    .replace(`<base href="${BOARD_PATH}/"`, `<base href="${publicUrl(prefix, `${BOARD_PATH}/`)}"`)
    .replace(`"url":"${BOARD_PATH}/batches"`, `"url":"${publicUrl(prefix, `${BOARD_PATH}/batches`)}"`);
}

function adapterFor(rt: Runtime, lane: Lane, write: boolean): BullMQAdapter {
  const adapter = new BullMQAdapter(rt.queues[lane], {
    readOnlyMode: !write,
    allowRetries: write,
    description: DESCRIPTIONS[lane],
    displayName: lane,
  });
  adapter.setFormatter('data', (data: unknown) => scrubJobData(data));
  adapter.setFormatter('returnValue', (data: unknown) => scrubJobData(data));
  return adapter;
}

/** Registers Bull Board and the batch routes in one scope, behind basic auth when configured. */
export function registerDashboard(app: FastifyInstance, rt: Runtime, options: DashboardOptions = {}): void {
  const write = options.write ?? false;
  const creds = dashboardCredentials(rt.config);
  void app.register(async (scope) => {
    if (creds) scope.addHook('onRequest', basicAuthHook(creds));
    scope.addHook('onRequest', writeGuard(rt, write));
    const serverAdapter = new FastifyAdapter();
    serverAdapter.setBasePath(BOARD_PATH);
    createBullBoard({
      queues: LANES.map((lane) => adapterFor(rt, lane, write)),
      serverAdapter,
      options: {
        uiConfig: {
          boardTitle: 'kie-upscale-queue',
          miscLinks: [{ text: 'Batches', url: `${BOARD_PATH}/batches` }],
        },
      },
    });
    scope.addHook('onSend', async (request, reply, payload) => {
      if (request.publicPath === '' || typeof payload !== 'string') return payload;
      if (!String(reply.getHeader('content-type') ?? '').startsWith('text/html')) return payload;
      return withPublicPath(payload, request.publicPath);
    });
    await scope.register(serverAdapter.registerPlugin(), { prefix: BOARD_PATH });
    registerBatches(scope, rt, { ...options.batches, write });
    registerBatchDetail(scope, rt, { write });
    // The pages and JSON typed with a trailing slash (`/dashboard/batches/` answered 400 for the empty id "").
    for (const pattern of BATCH_PAGES) redirectTrailingSlash(scope, pattern);
  });
}
