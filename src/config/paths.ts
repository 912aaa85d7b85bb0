/** PUBLIC_PATH and TRUST_PROXY: the public prefix of the HTTP app and who may set it per request. */
import { isIP } from 'node:net';

/** A path prefix: `/seg[/seg...]`, unreserved characters only between the slashes. */
const PREFIX = /^(\/[A-Za-z0-9._~-]+)*\/?$/;

/**
 * The normalised prefix (`''` or `/a/b`, no trailing slash), or null when `text` is not a plain absolute path
 * (a scheme, `//host`, a dot segment, `%`, quotes or anything outside `A-Z a-z 0-9 . _ ~ -` between slashes).
 */
export function normalisePrefix(text: string): string | null {
  const t = text.trim();
  if (t.length > 200 || !PREFIX.test(t)) return null;
  const p = t.replace(/\/+$/, '');
  if (p.split('/').some((seg) => seg === '.' || seg === '..')) return null;
  return p;
}

/** Who may set X-Forwarded-Prefix: nobody (false), any peer (true), or these addresses / CIDR ranges. */
export type TrustProxy = boolean | readonly string[];

/** `true`, `false`, or a comma list of IP addresses and CIDR ranges. Throws Error naming the bad entry. */
export function parseTrustProxy(text: string): TrustProxy {
  const t = text.trim().toLowerCase();
  if (t === 'true' || t === '1' || t === 'yes') return true;
  if (t === 'false' || t === '0' || t === 'no') return false;
  const entries = text.split(',').map((s) => s.trim()).filter(Boolean);
  for (const entry of entries) {
    const [addr = '', bits, extra] = entry.split('/');
    const family = isIP(addr);
    const max = family === 6 ? 128 : 32;
    if (family === 0 || extra !== undefined || (bits !== undefined && (!/^\d{1,3}$/.test(bits) || Number(bits) > max))) {
      throw new Error(`"${entry}" is not true, false, an IP address or a CIDR range (e.g. 10.0.0.0/8)`);
    }
  }
  if (entries.length === 0) throw new Error('is empty; use true, false or a comma list of addresses / CIDR ranges');
  return Object.freeze(entries);
}
