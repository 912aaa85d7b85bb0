/**
 * The public base path: where a browser reaches this app when a reverse proxy serves it under a prefix and strips
 * the prefix before passing the request on (nginx `location /ops/ { proxy_pass http://app/; }`). The app's routes
 * never change (`/dashboard`, `/api/batches`, ...); every link, redirect and `<base href>` it writes carries the
 * prefix, built by {@link publicUrl}.
 *
 * The prefix is `X-Forwarded-Prefix` when the request comes from a trusted proxy (TRUST_PROXY) and the header is a
 * plain path, else PUBLIC_PATH, else none. A header from an untrusted peer is ignored, so nobody can make the app
 * write links to a path of their choosing.
 */
import { BlockList, isIP } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { normalisePrefix, type TrustProxy } from '../config/paths.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The public prefix of this request: '' or e.g. '/ops' (no trailing slash). Set by {@link registerPublicPath}. */
    publicPath: string;
  }
}

/** A predicate over the peer address, from TRUST_PROXY (already validated by the config). */
export function proxyTrust(trust: TrustProxy): (address: string) => boolean {
  if (typeof trust === 'boolean') return () => trust;
  const list = new BlockList();
  for (const entry of trust) {
    const [addr = '', bits] = entry.split('/');
    const type = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(addr, type);
    else list.addSubnet(addr, Number(bits), type);
  }
  return (address: string) => {
    const a = address.replace(/^::ffff:(?=\d+\.)/, '');
    const family = isIP(a);
    return family !== 0 && list.check(a, family === 6 ? 'ipv6' : 'ipv4');
  };
}

export interface PublicPathOptions {
  /** PUBLIC_PATH, already normalised. @defaultValue `''` */
  publicPath?: string;
  /** TRUST_PROXY. @defaultValue `false` */
  trustProxy?: TrustProxy;
}

/** The public prefix of one request (see the module comment). */
export function publicPathOf(
  request: Pick<FastifyRequest, 'headers'> & { socket: { remoteAddress?: string | undefined } },
  publicPath: string,
  trusted: (address: string) => boolean,
): string {
  const header = request.headers['x-forwarded-prefix'];
  const given = Array.isArray(header) ? header[0] : header;
  if (given !== undefined && trusted(request.socket.remoteAddress ?? '')) {
    const p = normalisePrefix(given);
    if (p !== null) return p;
  }
  return publicPath;
}

/** Sets `request.publicPath` on every request of `app` (call before registering routes). */
export function registerPublicPath(app: FastifyInstance, options: PublicPathOptions = {}): void {
  const publicPath = options.publicPath ?? '';
  const trusted = proxyTrust(options.trustProxy ?? false);
  app.decorateRequest('publicPath', '');
  app.addHook('onRequest', (request, _reply, done) => {
    request.publicPath = publicPathOf({ headers: request.headers, socket: request.raw.socket }, publicPath, trusted);
    done();
  });
}

/**
 * The URL a browser must use for the app's own `path` (which starts with '/'), e.g. `publicUrl(request,
 * '/api/batches')` → `/ops/api/batches` behind a proxy at /ops/. Use it for every link, redirect and form action.
 */
export function publicUrl(request: Pick<FastifyRequest, 'publicPath'> | string, path: string): string {
  const prefix = typeof request === 'string' ? request : (request.publicPath ?? '');
  return `${prefix}${path.startsWith('/') ? path : `/${path}`}`;
}

/**
 * Registers `GET <pattern>/` (the same path typed with a trailing slash) as a redirect (302, query kept) to
 * `pattern`, with the public prefix: `/dashboard/batches/` otherwise routes to `/dashboard/batches/:id` with an
 * empty id. The target is built from the pattern and the decoded params (each re-encoded), never from the URL as
 * typed, so it always stays on this app's own path (no `//host` open redirect).
 */
export function redirectTrailingSlash(app: FastifyInstance, pattern: string): void {
  app.get(`${pattern}/`, async (request, reply) => {
    const params = (request.params ?? {}) as Record<string, string>;
    const path = pattern.replace(/:([A-Za-z]+)/g, (_, name: string) => encodeURIComponent(params[name] ?? ''));
    const query = request.url.includes('?') ? request.url.slice(request.url.indexOf('?')) : '';
    return reply.redirect(publicUrl(request, path) + query, 302);
  });
}
