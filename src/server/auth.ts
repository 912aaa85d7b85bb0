/**
 * HTTP basic auth for the dashboard (DASHBOARD_USER / DASHBOARD_PASSWORD), compared in constant time, and the
 * warning given when the dashboard is served without it beyond the loopback interface.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config/index.js';
import type { Logger } from '../log.js';

export interface BasicAuthCredentials {
  user: string;
  password: string;
}

/** The realm browsers show in their login prompt. */
export const REALM = 'kie-upscale-queue dashboard';

/** The configured credentials, or null when the dashboard is open (neither variable set). */
export function dashboardCredentials(
  config: Pick<Config, 'dashboardUser' | 'dashboardPassword'>,
): BasicAuthCredentials | null {
  if (config.dashboardUser === undefined || config.dashboardPassword === undefined) return null;
  return { user: config.dashboardUser, password: config.dashboardPassword };
}

/** Equal-length digests, so neither the length nor the content of the secret leaks through timing. */
function sameText(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** True when `header` is `Basic base64(user:password)` with exactly these credentials. Never throws. */
export function checkBasicAuth(header: string | undefined, creds: BasicAuthCredentials): boolean {
  const m = /^Basic\s+([A-Za-z0-9+/=._~-]+)\s*$/i.exec(header ?? '');
  const decoded = m ? Buffer.from(m[1] as string, 'base64').toString('utf8') : '';
  const colon = decoded.indexOf(':');
  const user = colon < 0 ? '' : decoded.slice(0, colon);
  const password = colon < 0 ? '' : decoded.slice(colon + 1);
  // Both comparisons always run, so a right user name with a wrong password takes as long as anything else.
  const userOk = sameText(user, creds.user);
  const passwordOk = sameText(password, creds.password);
  return colon >= 0 && userOk && passwordOk;
}

/** An `onRequest` hook answering 401 with `WWW-Authenticate` unless the request carries the credentials. */
export function basicAuthHook(creds: BasicAuthCredentials) {
  return async function requireBasicAuth(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (checkBasicAuth(request.headers.authorization, creds)) return;
    await reply
      .code(401)
      .header('www-authenticate', `Basic realm="${REALM}", charset="UTF-8"`)
      .header('cache-control', 'no-store')
      .send({ error: 'authentication required' });
  };
}

/** `127.0.0.1` (any 127/8), `::1`, `localhost` and IPv4-mapped loopback. */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^(::ffff:)?127(\.\d{1,3}){3}$/.test(h);
}

/**
 * Logs a loud warning when the dashboard would be reachable beyond this machine without a password.
 * @returns true when it warned.
 */
export function warnIfDashboardExposed(
  log: Logger,
  host: string,
  creds: BasicAuthCredentials | null,
): boolean {
  if (creds || isLoopbackHost(host)) return false;
  log.warn(
    { host },
    `DASHBOARD WITHOUT AUTHENTICATION on ${host}: anyone who can reach this port sees every queue and batch. ` +
      'Set DASHBOARD_USER and DASHBOARD_PASSWORD, bind to 127.0.0.1 (--host), or run with --no-dashboard.',
  );
  return true;
}
