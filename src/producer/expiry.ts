/**
 * Expiring (presigned) input URLs. The expiry is read from the query, never guessed, and only from a URL that is
 * recognisably signed: the expiry parameters count only beside the signature parameter of the same scheme, so a
 * plain `?expires=3600` (a cache hint, a TTL, anything) is not an expiry. Recognised (parameter names
 * case-insensitive):
 * - S3 Signature V4: `X-Amz-Date` (`YYYYMMDDTHHMMSSZ`) + `X-Amz-Expires` (seconds), signed by `X-Amz-Signature`
 *   (AWS "Authenticating Requests: Using Query Parameters (SigV4)");
 * - Google Cloud Storage V4: `X-Goog-Date` + `X-Goog-Expires` (seconds), signed by `X-Goog-Signature` (GCS "Signed
 *   URLs", V4 signing);
 * - `Expires` (Unix time) with `Signature` and the key id of its scheme: `AWSAccessKeyId` (S3 V2), `GoogleAccessId`
 *   (GCS V2), `Key-Pair-Id` (CloudFront canned policy), `OSSAccessKeyId` (Alibaba Cloud OSS);
 * - CloudFront custom policies: `Policy` (CloudFront's URL-safe base64 of a JSON policy, with
 *   `Statement[0].Condition.DateLessThan["AWS:EpochTime"]`) with `Signature` and `Key-Pair-Id`;
 * - Azure SAS: `se` (ISO 8601) with `sig`;
 * - Akamai EdgeAuth tokens: `__token__` or `hdnts` holding `exp=<Unix time>` and `hmac=`.
 * A Unix time above 1e11 is read as milliseconds (1e11 seconds is the year 5138). A URL without these is not known
 * to expire.
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

/** A Unix time in seconds, or in milliseconds when above 1e11, as Unix ms; null when it is no such number. */
function epochMs(v: string | number | undefined): number | null {
  const n = typeof v === 'number' ? v : v !== undefined && /^\d{1,16}$/.test(v) ? Number(v) : NaN;
  if (!Number.isFinite(n) || n < 0) return null;
  return n > 1e11 ? n : n * 1000;
}

function cloudFrontPolicy(policy: string): number | null {
  try {
    const json = Buffer.from(policy.replace(/-/g, '+').replace(/_/g, '=').replace(/~/g, '/'), 'base64').toString('utf8');
    const parsed = JSON.parse(json) as { Statement?: { Condition?: { DateLessThan?: { 'AWS:EpochTime'?: unknown } } }[] };
    const epoch = parsed.Statement?.[0]?.Condition?.DateLessThan?.['AWS:EpochTime'];
    return typeof epoch === 'number' ? epochMs(epoch) : null;
  } catch {
    return null;
  }
}

/** The key id parameters that make `Expires` + `Signature` a signed URL, and the scheme each names. */
const EXPIRES_SCHEMES: readonly [string, string][] = [
  ['awsaccesskeyid', 'S3 V2'],
  ['googleaccessid', 'GCS V2'],
  ['key-pair-id', 'CloudFront'],
  ['ossaccesskeyid', 'OSS'],
];

/** The expiry a presigned URL carries, or null when it carries none that is recognised (or is not signed). */
export function linkExpiry(url: string): LinkExpiry | null {
  const p = params(url);
  const has = (k: string) => (p.get(k) ?? '') !== '';
  const amz = amzDate(p.get('x-amz-date'));
  const amzTtl = seconds(p.get('x-amz-expires'));
  if (has('x-amz-signature') && amz !== null && amzTtl !== null) {
    return { expiresAt: amz + amzTtl * 1000, source: 'X-Amz-Date + X-Amz-Expires' };
  }
  const goog = amzDate(p.get('x-goog-date'));
  const googTtl = seconds(p.get('x-goog-expires'));
  if (has('x-goog-signature') && goog !== null && googTtl !== null) {
    return { expiresAt: goog + googTtl * 1000, source: 'X-Goog-Date + X-Goog-Expires' };
  }
  if (has('signature')) {
    const scheme = EXPIRES_SCHEMES.find(([key]) => has(key));
    const expires = epochMs(p.get('expires'));
    if (scheme !== undefined && expires !== null) return { expiresAt: expires, source: `Expires, ${scheme[1]}` };
    const policy = p.get('policy');
    if (policy !== undefined && has('key-pair-id')) {
      const at = cloudFrontPolicy(policy);
      if (at !== null) return { expiresAt: at, source: 'the CloudFront Policy' };
    }
  }
  const se = p.get('se');
  if (se !== undefined && has('sig')) {
    const at = Date.parse(se);
    if (Number.isFinite(at)) return { expiresAt: at, source: 'the SAS se' };
  }
  const token = p.get('__token__') ?? p.get('hdnts');
  if (token !== undefined && /(^|~)hmac=/.test(token)) {
    const at = epochMs(/(?:^|~)exp=(\d+)/.exec(token)?.[1]);
    if (at !== null) return { expiresAt: at, source: 'the Akamai token exp' };
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
  const span = (ms: number) => formatDuration(Math.max(0, ms));
  return {
    expiresAt: e.expiresAt,
    warning:
      `the link expires at ${new Date(e.expiresAt).toISOString()} (${e.source}), in ${span(e.expiresAt - now)}, ` +
      `before its estimated submission in ${span(submitAt - now)}: it may be refused as expired; sign it for longer`,
  };
}
