/**
 * Expiring (presigned) input URLs. The expiry is read from the query, never guessed:
 * - S3 Signature V4: `X-Amz-Date` (`YYYYMMDDTHHMMSSZ`) + `X-Amz-Expires` (seconds) — AWS "Authenticating Requests:
 *   Using Query Parameters (SigV4)";
 * - Google Cloud Storage V4: `X-Goog-Date` + `X-Goog-Expires` (seconds) — GCS "Signed URLs", V4 signing;
 * - S3 Signature V2, GCS V2 and CloudFront canned policies: `Expires` (Unix seconds);
 * - CloudFront custom policies: `Policy` (CloudFront's URL-safe base64 of a JSON policy) with
 *   `Statement[0].Condition.DateLessThan["AWS:EpochTime"]`;
 * - Azure SAS: `se` (ISO 8601) beside `sig`.
 * Parameter names match case-insensitively. A URL without these is not known to expire.
 */
import { formatDuration } from '../config/units.js';

export interface LinkExpiry {
  /** When the link stops working, Unix ms. */
  expiresAt: number;
  /** Which parameters said so, for messages. */
  source: string;
}

function params(url: string): Map<string, string> {
  const out = new Map<string, string>();
  const q = url.split('#')[0]?.split('?').slice(1).join('?') ?? '';
  for (const pair of q.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const rawKey = eq === -1 ? pair : pair.slice(0, eq);
    const rawValue = eq === -1 ? '' : pair.slice(eq + 1);
    const decode = (s: string) => {
      try {
        return decodeURIComponent(s.replace(/\+/g, ' '));
      } catch {
        return s;
      }
    };
    const key = decode(rawKey).toLowerCase();
    if (!out.has(key)) out.set(key, decode(rawValue));
  }
  return out;
}

/** `20250101T120000Z` → Unix ms, or null. */
function amzDate(s: string | undefined): number | null {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s ?? '');
  if (!m) return null;
  const [y = 0, mo = 0, d, h, mi, se] = m.slice(1).map(Number);
  const t = Date.UTC(y, mo - 1, d, h, mi, se);
  return Number.isFinite(t) ? t : null;
}

const seconds = (s: string | undefined): number | null => (s !== undefined && /^\d{1,12}$/.test(s) ? Number(s) : null);

function cloudFrontPolicy(policy: string): number | null {
  try {
    const json = Buffer.from(policy.replace(/-/g, '+').replace(/_/g, '=').replace(/~/g, '/'), 'base64').toString('utf8');
    const parsed = JSON.parse(json) as { Statement?: { Condition?: { DateLessThan?: { 'AWS:EpochTime'?: unknown } } }[] };
    const epoch = parsed.Statement?.[0]?.Condition?.DateLessThan?.['AWS:EpochTime'];
    return typeof epoch === 'number' && Number.isFinite(epoch) ? epoch * 1000 : null;
  } catch {
    return null;
  }
}

/** The expiry a presigned URL carries, or null when it carries none that is recognised. */
export function linkExpiry(url: string): LinkExpiry | null {
  const p = params(url);
  const amz = amzDate(p.get('x-amz-date'));
  const amzTtl = seconds(p.get('x-amz-expires'));
  if (amz !== null && amzTtl !== null) return { expiresAt: amz + amzTtl * 1000, source: 'X-Amz-Date + X-Amz-Expires' };
  const goog = amzDate(p.get('x-goog-date'));
  const googTtl = seconds(p.get('x-goog-expires'));
  if (goog !== null && googTtl !== null) return { expiresAt: goog + googTtl * 1000, source: 'X-Goog-Date + X-Goog-Expires' };
  const expires = seconds(p.get('expires'));
  if (expires !== null) return { expiresAt: expires * 1000, source: 'Expires' };
  const policy = p.get('policy');
  if (policy !== undefined) {
    const at = cloudFrontPolicy(policy);
    if (at !== null) return { expiresAt: at, source: 'the CloudFront Policy' };
  }
  const se = p.get('se');
  if (se !== undefined && p.has('sig')) {
    const at = Date.parse(se);
    if (Number.isFinite(at)) return { expiresAt: at, source: 'the SAS se' };
  }
  return null;
}

/** The reason to refuse an input whose link expired at or before `now` (Unix ms); null otherwise. */
export function expiryProblem(url: string, now: number): string | null {
  const e = linkExpiry(url);
  if (e === null || e.expiresAt > now) return null;
  return `the link expired at ${new Date(e.expiresAt).toISOString()} (${e.source}); sign a new URL`;
}

/**
 * The warning for a link that will expire before `submitAt`, the estimated time its createTask is sent
 * (Unix ms); null when it will not (or carries no expiry).
 */
export function expiryWarning(url: string, submitAt: number, now: number): { expiresAt: number; warning: string } | null {
  const e = linkExpiry(url);
  if (e === null || e.expiresAt > submitAt) return null;
  return {
    expiresAt: e.expiresAt,
    warning:
      `the link expires at ${new Date(e.expiresAt).toISOString()} (${e.source}), in ${formatDuration(Math.max(0, e.expiresAt - now))}, ` +
      `before its estimated submission in ${formatDuration(Math.max(0, submitAt - now))}: it may be refused as expired; sign it for longer`,
  };
}
