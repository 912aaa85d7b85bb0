/**
 * The one HTTP app of `upscale serve`, built without listening (tests call `app.inject()`; only the command
 * listens). Parts can be switched off so the public callback receiver and the private dashboard run as separate
 * processes:
 *
 * | route | part |
 * |---|---|
 * | `POST /callbacks/kie/:id?t=` | callbacks |
 * | `/dashboard` (Bull Board), `/dashboard/batches[/:id[/compare/:jobId\|/thumbs/:jobId/:file]]`, `/api/batches[/:id[/export\|/records\|/retry]]` | dashboard (basic auth when configured) |
 * | `GET /metrics` | metrics |
 * | `GET /healthz` | always |
 *
 * Behind a reverse proxy that serves the app under a prefix (PUBLIC_PATH, or a trusted proxy's X-Forwarded-Prefix),
 * the routes stay as above and every link, redirect and `<base href>` carries the prefix (public-path.ts).
 *
 * Logs are pino JSON through the runtime's logger: one line per request with the `?t=` token redacted from the
 * URL, never a header.
 */
import Fastify, { LogController, type FastifyInstance, type FastifyRequest } from 'fastify';
import { redactSecrets, type Logger } from '../log.js';
import { Counters } from '../metrics/counters.js';
import { LANES } from '../queue/names.js';
import type { Runtime } from '../runtime.js';
import { trackRoutes } from './access.js';
import { proxyTrust, publicUrl, registerPublicPath } from './public-path.js';
import { registerCallbacks, type CallbackOptions } from './callbacks.js';
import { BOARD_PATH, registerDashboard } from './dashboard.js';
import type { BatchesOptions } from './batches.js';
import { registerHealth, type HealthOptions } from './health.js';
import { registerMetrics, type MetricsOptions } from './metrics.js';

export interface ServerOptions {
  /** Bull Board, the batches page and the batch API. @defaultValue `true` */
  dashboard?: boolean;
  /** The kie.ai callback receiver. @defaultValue `true` */
  callbacks?: boolean;
  /** Prometheus `/metrics`. @defaultValue `true` */
  metrics?: boolean;
  /** Let Bull Board retry and clean jobs. @defaultValue `false` (read-only) */
  dashboardWrite?: boolean;
  /** Where the server logs. @defaultValue `rt.log` */
  logger?: Logger;
  callbackOptions?: CallbackOptions;
  metricsOptions?: MetricsOptions;
  healthOptions?: HealthOptions;
  batchesOptions?: BatchesOptions;
  /** How often this process writes its counters to Redis. @defaultValue `1000` ms */
  counterFlushMs?: number;
}

/** What a request log line says about the request: no headers, and the URL without callback tokens. */
export function requestSerializer(req: { method?: string; url?: string; ip?: string }) {
  return { method: req.method, url: redactSecrets(req.url ?? ''), remoteAddress: req.ip };
}

/** Requests logged at debug only: probes, scrapes and the board's own polling. */
function isQuiet(url: string): boolean {
  return (
    url === '/healthz' ||
    url === '/metrics' ||
    url.startsWith(`${BOARD_PATH}/static/`) ||
    url.startsWith(`${BOARD_PATH}/api/`)
  );
}

export function buildApp(rt: Runtime, options: ServerOptions = {}): FastifyInstance {
  const base = options.logger ?? rt.log;
  const logger = base.child(
    { component: 'server' },
    {
      serializers: {
        req: requestSerializer,
        res: (reply: { statusCode?: number }) => ({ statusCode: reply.statusCode }),
      },
    },
  );
  const app = Fastify({
    loggerInstance: logger,
    // One line per request from the onResponse hook below instead of fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    // TRUST_PROXY: their X-Forwarded-For/-Proto (request.ip, protocol) and X-Forwarded-Prefix (public-path.ts).
    trustProxy: rt.config.trustProxy === false ? false : proxyTrust(rt.config.trustProxy),
    bodyLimit: 1_048_576,
  }) as unknown as FastifyInstance;
  trackRoutes(app);
  registerPublicPath(app, { publicPath: rt.config.publicPath, trustProxy: rt.config.trustProxy });
  const counters = new Counters(rt.redis, rt.store.keys.counters, options.counterFlushMs ?? 1000);

  app.addHook('onResponse', async (request: FastifyRequest, reply) => {
    const url = redactSecrets(request.url);
    const fields = {
      method: request.method,
      url,
      statusCode: reply.statusCode,
      ms: Math.round(reply.elapsedTime),
    };
    if (isQuiet(url.split('?')[0] ?? '')) request.log.debug(fields, 'request');
    else request.log.info(fields, 'request');
  });

  registerHealth(app, rt, options.healthOptions);
  if (options.metrics ?? true) registerMetrics(app, rt, counters, options.metricsOptions);
  const followUps =
    (options.callbacks ?? true) ? registerCallbacks(app, rt, counters, options.callbackOptions) : null;
  if (options.dashboard ?? true) {
    registerDashboard(app, rt, {
      write: options.dashboardWrite ?? false,
      ...(options.batchesOptions ? { batches: options.batchesOptions } : {}),
    });
    app.get('/', async (request, reply) => reply.redirect(publicUrl(request, `${BOARD_PATH}/batches`)));
  }

  // Without a listener BullMQ prints every reconnection error of the lanes' queues; log them, at most every 10 s.
  let lastRedisError = 0;
  const onQueueError = (err: Error) => {
    if (Date.now() - lastRedisError < 10_000) return;
    lastRedisError = Date.now();
    app.log.warn({ err }, 'Redis connection error (retrying); /healthz reports redis down meanwhile');
  };
  for (const lane of LANES) rt.queues[lane].on('error', onQueueError);

  app.addHook('onClose', async () => {
    for (const lane of LANES) rt.queues[lane].off('error', onQueueError);
    await followUps?.close();
    await counters
      .flush()
      .catch((err: unknown) => app.log.warn({ err }, 'could not write the last counters'));
  });
  return app;
}
