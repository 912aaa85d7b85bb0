/**
 * What stands in front of every API call (kie.ai's and the upload host's), in this order:
 * no User-Agent → Cloudflare 403 "error code: 1010"; injected HTML 502; maintenance → 455; key → 401;
 * injected slowness. After the handler, an injected malformed answer cuts the JSON body.
 * Also the error and not-found handlers, so even those answer in kie's envelope.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { SimContext } from './context.js';
import { MESSAGES, sendCloudflare1010, sendEnvelope, sendHtml502 } from './envelope.js';

/** The Bearer key of a request, or null. */
export function keyOf(request: FastifyRequest): string | null {
  const auth = request.headers.authorization;
  if (typeof auth !== 'string') return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
  return m ? (m[1] as string) : null;
}

/** Adds the gate to an encapsulated context holding API routes; `upload` selects the upload envelope. */
export function addGate(app: FastifyInstance, ctx: SimContext, upload: boolean): void {
  const style = ctx.opts;
  app.addHook('onRequest', async (request, reply) => {
    ctx.stats.arrived(request.url.split('?', 1)[0] as string);
    if (!request.headers['user-agent']) return sendCloudflare1010(reply);
    if (ctx.faults.draw('htmlErrorRate')) {
      ctx.stats.counters.htmlErrors++;
      return sendHtml502(reply);
    }
    if (ctx.faults.inMaintenance()) {
      ctx.stats.countCode(455);
      return sendEnvelope(reply, style, 455, MESSAGES[455] as string, null, upload);
    }
    const key = keyOf(request);
    // The accepted keys can change at run time (`setApiKeys`: a key revoked or restored mid-run).
    if (!key || !ctx.opts.apiKeys.has(key)) {
      ctx.stats.countCode(401);
      return sendEnvelope(reply, style, 401, MESSAGES[401] as string, null, upload);
    }
    if (ctx.faults.draw('slowRate')) {
      ctx.stats.counters.slowed++;
      await sleep(ctx.faults.faults.slowMs / ctx.opts.timeScale, undefined, { signal: ctx.stopSignal }).catch(
        () => undefined,
      );
    }
    return undefined;
  });

  app.addHook('onSend', async (_request, reply, payload) => {
    const type = String(reply.getHeader('content-type') ?? '');
    if (typeof payload !== 'string' || !type.startsWith('application/json')) return payload;
    if (!ctx.faults.draw('malformedRate')) return payload;
    ctx.stats.counters.malformed++;
    return payload.slice(0, Math.floor(payload.length / 2));
  });

  app.setErrorHandler((error: { statusCode?: number; message?: string }, request, reply) => {
    const status = error.statusCode ?? 500;
    const code = status >= 400 && status < 500 ? 422 : 500;
    const msg =
      code === 422 ? `bad request: ${error.message ?? 'unreadable body'}` : (MESSAGES[500] as string);
    if (code === 500) ctx.logger.warn({ err: error, url: request.url }, 'sim: unexpected error');
    ctx.stats.countCode(code);
    return sendEnvelope(reply, style, code, msg, null, upload);
  });
}

/** The answer helper of a route: counts the code and sends the envelope. */
export function answerer(ctx: SimContext, upload: boolean) {
  return (reply: FastifyReply, code: number, msg?: string, data: unknown = null) => {
    ctx.stats.countCode(code);
    return sendEnvelope(reply, ctx.opts, code, msg ?? MESSAGES[code] ?? 'error', data, upload);
  };
}
