/**
 * The private dashboard: Bull Board over every lane's queue at `/dashboard`, the batches page and its JSON/export
 * API (batches.ts), all behind HTTP basic auth when DASHBOARD_USER/DASHBOARD_PASSWORD are set.
 *
 * Read-only by default (`readOnlyMode` on every adapter). With `write` (`upscale serve --dashboard-write`) Bull
 * Board may retry and clean jobs, nothing else: pausing, emptying, obliterating, adding or editing jobs through it
 * would bypass the pipeline's own bookkeeping (`upscale pause|resume|retry|cancel` do that), so those stay refused.
 * Job data is shown with anything secret-looking redacted (job data never holds the key or a callback URL; this
 * is a second line of defence).
 */
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { redactSecrets } from '../log.js';
import { LANES, type Lane } from '../queue/names.js';
import type { Runtime } from '../runtime.js';
import { basicAuthHook, dashboardCredentials } from './auth.js';
import { registerBatches, type BatchesOptions } from './batches.js';

export interface DashboardOptions {
  /** Allow Bull Board's retry and clean actions. @defaultValue `false` (read-only) */
  write?: boolean;
  batches?: BatchesOptions;
}

/** Where Bull Board is mounted. */
export const BOARD_PATH = '/dashboard';

const DESCRIPTIONS: Record<Lane, string> = {
  submit: 'createTask under the account budget; a job per image and generation',
  poll: 'recordInfo checks; a job parked (delayed) between checks of one task',
  download: 'downloads of results to OUTPUT_URL / OUTPUT_DIR',
};

/** Mutating Bull Board routes allowed with `write`: retry and clean, of a whole status or of one job. */
const WRITE_ALLOWED = [
  /^\/api\/queues\/[^/]+\/(retry|clean)\/[^/]+$/,
  /^\/api\/queues\/[^/]+\/[^/]+\/(retry|clean)$/,
];

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

function writeGuard(write: boolean) {
  return async function guardWrites(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (request.method === 'GET' || request.method === 'HEAD' || request.method === 'OPTIONS') return;
    const path = request.url.split('?')[0] ?? '';
    if (!path.startsWith(`${BOARD_PATH}/api/`)) return;
    const route = path.slice(BOARD_PATH.length);
    if (write && WRITE_ALLOWED.some((re) => re.test(route))) return;
    const error = write
      ? 'only retry and clean are allowed from the dashboard; use upscale pause|resume|retry|cancel for the rest'
      : 'the dashboard is read-only (start upscale serve with --dashboard-write to allow retry and clean)';
    await reply.code(write ? 403 : 405).send({ error });
  };
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
    scope.addHook('onRequest', writeGuard(write));
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
    await scope.register(serverAdapter.registerPlugin(), { prefix: BOARD_PATH });
    registerBatches(scope, rt, options.batches);
  });
}
