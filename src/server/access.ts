/**
 * Who may do what on the dashboard, decided on the route fastify actually matched (`request.routeOptions`: the
 * registered pattern, after percent-decoding, with its decoded params) and never on the URL as typed. A
 * percent-encoded letter, an encoded slash, a matrix `;` parameter or a dot segment either routes to a registered
 * pattern, and is judged as that pattern, or routes nowhere (404).
 *
 * Deny by default:
 * - `GET` (and the `HEAD` fastify derives from it) of any dashboard route is a read: allowed.
 * - Any other method is a write. First, a write a browser sends from another site is refused (403 `cross-site
 *   request refused`, {@link crossSiteReason}): the browser attaches the dashboard's basic-auth credentials to any
 *   request to this origin, so without this a page elsewhere could press the dashboard's buttons. Then, read-only
 *   (the default): 405. With `--dashboard-write`: allowed only when the matched route is in {@link BOARD_WRITE_RULES}
 *   and its params pass the rule's check, else 403.
 *
 * What write mode allows, exactly (Bull Board's routes under `/dashboard`):
 * | method and route | params allowed |
 * |---|---|
 * | `PUT /api/queues/:queueName/retry/:queueStatus` | a lane; `failed` |
 * | `PUT /api/queues/:queueName/clean/:queueStatus` | a lane; `completed` or `failed` |
 * | `PUT /api/queues/:queueName/:jobId/retry` | a lane; a job that is `failed` now |
 * | `PUT /api/queues/:queueName/:jobId/clean` | a lane; a job that is `completed` or `failed` now |
 *
 * and the pipeline's own batch routes (their handlers check the batch and keep the records' bookkeeping):
 * | `POST /dashboard/batches/:id/:action` | `pause` or `resume` (a batch's gate, src/control/batch-schedule.ts) |
 * | `POST /api/batches/:id/retry` | retry the `failed`/`timed_out` images of the filtered view |
 *
 * Everything else (pause, resume, empty, obliterate, add, promote, edit, delay, priority, concurrency, rate limits,
 * schedulers, and clean of waiting, delayed or active jobs, which would drop images from the pipeline without a
 * record) stays refused: `upscale pause|resume|retry|cancel` do those with the pipeline's own bookkeeping.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { LANES, queueName, type Lane } from '../queue/names.js';
import type { Runtime } from '../runtime.js';

/** Where Bull Board is mounted inside the app (the public URL may add a prefix: public-path.ts). */
export const BOARD_PATH = '/dashboard';

/** A write the dashboard may do with `--dashboard-write`, and the check its decoded params must pass. */
export interface WriteRule {
  method: 'PUT' | 'POST';
  /** The registered route pattern, as fastify reports it in `request.routeOptions.url`. */
  route: string;
  /** What it does, for the README and error messages. */
  does: string;
  /** Resolves null when allowed, else the reason for the refusal. */
  check(params: Record<string, string>, rt: Runtime): Promise<string | null>;
}

const LANE_QUEUES = new Map<string, Lane>(LANES.map((lane) => [queueName(lane), lane]));

function laneOf(params: Record<string, string>): Lane | null {
  return LANE_QUEUES.get(params.queueName ?? '') ?? null;
}

function statusIn(allowed: readonly string[]) {
  return (params: Record<string, string>): Promise<string | null> => {
    if (!laneOf(params)) return Promise.resolve(`unknown queue "${params.queueName}"`);
    const status = params.queueStatus ?? '';
    return Promise.resolve(allowed.includes(status) ? null : `only ${allowed.join(' or ')} jobs, not "${status}"`);
  };
}

function jobIn(allowed: readonly string[]) {
  return async (params: Record<string, string>, rt: Runtime): Promise<string | null> => {
    const lane = laneOf(params);
    if (!lane) return `unknown queue "${params.queueName}"`;
    const state = await rt.queues[lane].getJobState(params.jobId ?? '');
    return allowed.includes(state) ? null : `only ${allowed.join(' or ')} jobs; this one is ${state}`;
  };
}

/** The complete list of writes `--dashboard-write` allows; anything not here is refused. */
export const BOARD_WRITE_RULES: readonly WriteRule[] = [
  { method: 'PUT', route: `${BOARD_PATH}/api/queues/:queueName/retry/:queueStatus`, does: 'retry every failed job of a lane', check: statusIn(['failed']) },
  { method: 'PUT', route: `${BOARD_PATH}/api/queues/:queueName/clean/:queueStatus`, does: 'remove the completed or failed jobs of a lane', check: statusIn(['completed', 'failed']) },
  { method: 'PUT', route: `${BOARD_PATH}/api/queues/:queueName/:jobId/retry`, does: 'retry one failed job', check: jobIn(['failed']) },
  { method: 'PUT', route: `${BOARD_PATH}/api/queues/:queueName/:jobId/clean`, does: 'remove one completed or failed job', check: jobIn(['completed', 'failed']) },
  {
    method: 'POST',
    route: '/dashboard/batches/:id/:action',
    does: 'pause or resume one batch',
    check: (params) => Promise.resolve(['pause', 'resume'].includes(params.action ?? '') ? null : `unknown batch action "${params.action}"`),
  },
  { method: 'POST', route: '/api/batches/:id/retry', does: "retry the failed and timed-out images of a batch's filtered view", check: () => Promise.resolve(null) },
];

/**
 * The 405 answer of a write while the dashboard is read-only: what `--dashboard-write` would allow at this route
 * (`method`, the matched route's pattern), from {@link BOARD_WRITE_RULES}; for a write it never allows, the list of those it does.
 */
export function readOnlyMessage(method: string, route: string | undefined): string {
  const rule = BOARD_WRITE_RULES.find((r) => r.method === method.toUpperCase() && r.route === route);
  if (rule) return `the dashboard is read-only (start upscale serve with --dashboard-write to ${rule.does})`;
  return `the dashboard is read-only, and --dashboard-write does not allow this either (it allows: ${BOARD_WRITE_RULES.map((r) => r.does).join('; ')})`;
}

/**
 * The routes served without basic auth: probes, the scrape, the callback receiver (its own per-job token and
 * HMAC) and the redirect to the batches page. Every other route of the app is the dashboard's. `test/security/
 * dashboard-routing.test.ts` requests every registered route without credentials against this list.
 */
export const PUBLIC_ROUTES: readonly string[] = ['GET /', 'GET /healthz', 'GET /metrics', 'POST /callbacks/kie/:id'];

const routeTables = new WeakMap<object, { method: string; url: string }[]>();

/** Records every route registered on `app` from now on (call before registering any), for {@link routesOf}. */
export function trackRoutes(app: { addHook(name: 'onRoute', hook: (opts: { method: string | string[]; url: string }) => void): unknown }): void {
  const table: { method: string; url: string }[] = [];
  routeTables.set(app, table);
  app.addHook('onRoute', (opts) => {
    for (const method of Array.isArray(opts.method) ? opts.method : [opts.method]) table.push({ method: method.toUpperCase(), url: opts.url });
  });
}

/** Every route registered on `app` since {@link trackRoutes}: method (upper case) and pattern. */
export function routesOf(app: object): readonly { method: string; url: string }[] {
  return routeTables.get(app) ?? [];
}

/** The matched route of a request: its pattern and the methods it was registered for (upper case). */
export function matchedRoute(request: FastifyRequest): { url: string; methods: string[] } | null {
  const { url, method } = request.routeOptions;
  if (url === undefined) return null;
  const methods = (Array.isArray(method) ? method : [method]).map((m) => String(m).toUpperCase());
  return { url, methods };
}

/** True for a read: the request's method is GET or HEAD and the matched route is a GET (or its derived HEAD). */
export function isRead(request: FastifyRequest): boolean {
  const route = matchedRoute(request);
  if (!route) return false;
  const method = request.method.toUpperCase();
  if (method !== 'GET' && method !== 'HEAD') return false;
  return route.methods.includes('GET') || route.methods.includes('HEAD');
}

/**
 * Why a write is refused as cross-site, or null when it is not (decided once here, for every state-changing route of
 * the dashboard: Bull Board's and the pipeline's own):
 * - `Sec-Fetch-Site` (sent by every current browser) other than `same-origin` or `none` (typed by the user): refused;
 * - an `Origin` whose host differs from the request's host (fastify's `request.host`: the `Host` header, or a trusted
 *   proxy's `X-Forwarded-Host` under TRUST_PROXY), or `Origin: null`: refused, unless the browser itself said
 *   `Sec-Fetch-Site: same-origin` (a reverse proxy that rewrites `Host`, as nginx's `proxy_pass` does by default);
 * - neither header: not a browser (curl, scripts with the credentials): allowed.
 */
export function crossSiteReason(request: Pick<FastifyRequest, 'headers' | 'host'>): string | null {
  const one = (name: string): string | undefined => {
    const v = request.headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  const site = one('sec-fetch-site')?.trim().toLowerCase();
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return `Sec-Fetch-Site is ${site}`;
  const origin = one('origin');
  if (origin === undefined || site === 'same-origin') return null;
  if (origin.trim() === 'null') return 'Origin is null';
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return `Origin "${origin.slice(0, 100)}" is not a URL`;
  }
  if (host === '') return `Origin "${origin.slice(0, 100)}" has no host`;
  return host.toLowerCase() === String(request.host ?? '').toLowerCase() ? null : `Origin ${origin.slice(0, 100)} is not this dashboard (${request.host})`;
}

export type WriteVerdict = { ok: true } | { ok: false; status: 403 | 405; error: string };

/** Judges a dashboard request that is not a read. */
export async function judgeWrite(request: FastifyRequest, rt: Runtime, write: boolean): Promise<WriteVerdict> {
  const cross = crossSiteReason(request);
  if (cross) return { ok: false, status: 403, error: `cross-site request refused (${cross})` };
  const route = matchedRoute(request);
  const method = request.method.toUpperCase();
  const rule = route && BOARD_WRITE_RULES.find((r) => r.method === method && r.route === route.url && route.methods.includes(method));
  const params = (request.params ?? {}) as Record<string, string>;
  // The rule's own check runs in read-only mode too: a write that --dashboard-write would refuse as well is not
  // advertised as one the flag allows (a retry of completed jobs, an unknown lane).
  let problem = rule ? await rule.check(params, rt) : null;
  // A batch route names a batch that must exist: in write mode its handler answers 404; read-only, the 405 says so.
  if (!write && !problem && rule && params.id !== undefined && /\/batches\/:id\b/.test(rule.route) && (await rt.redis.exists(rt.store.keys.batch(params.id))) === 0) {
    problem = `there is no batch named ${params.id}`;
  }
  if (!write) return { ok: false, status: 405, error: problem ? `the dashboard is read-only, and --dashboard-write would refuse this too: ${problem}` : readOnlyMessage(method, route?.url) };
  const refuse = (why: string): WriteVerdict => ({
    ok: false,
    status: 403,
    error: `${why}; the dashboard may only retry failed jobs, remove completed or failed ones, pause or resume a batch and retry a batch's failed and timed-out images (use upscale pause|resume|retry|cancel for the rest)`,
  });
  if (!rule) return refuse(`${method} ${route?.url ?? 'this route'} is not allowed`);
  return problem ? refuse(problem) : { ok: true };
}

/**
 * An `onRequest` hook for the dashboard's scope (after basic auth): lets reads through, judges everything else.
 * Requests that matched no route never reach it (fastify answers 404 first).
 */
export function writeGuard(rt: Runtime, write: boolean) {
  return async function guardWrites(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (isRead(request)) return;
    const verdict = await judgeWrite(request, rt, write);
    if (verdict.ok) return;
    // Allow: the methods this route answers now, reads only, and only where the route has a GET (empty otherwise,
    // as RFC 9110 allows for a resource disabled by configuration).
    if (verdict.status === 405) {
      const url = matchedRoute(request)?.url;
      void reply.header('allow', url !== undefined && request.server.hasRoute({ method: 'GET', url }) ? 'GET, HEAD' : '');
    }
    await reply.code(verdict.status).header('cache-control', 'no-store').send({ error: verdict.error });
  };
}
