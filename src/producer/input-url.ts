/**
 * One URL, exactly. What a user wrote is what kie.ai gets and what the pre-flight and downloads request: no URL
 * parser may normalise it (WHATWG `URL` turns `'` into `%27` in queries, removes `./` and `../` segments, drops an
 * explicit default port; a host checking a signature over the exact path then answers 403).
 *
 * The one rule (RFC 3986 section 2): a URL whose every character is allowed in a URL is kept byte for byte. One
 * that is not valid as written is encoded exactly once, and the encoded form is what is checked, submitted and
 * recorded (beside the original):
 * - in the path, query and fragment, every character outside RFC 3986's set (unreserved `A-Z a-z 0-9 - . _ ~`,
 *   reserved `: / ? # [ ] @ ! $ & ' ( ) * + , ; =`) is replaced by the `%XX` escapes of its UTF-8 bytes
 *   (a space → `%20`, `é` → `%C3%A9`, `"<>\^{|}` and the backtick too), and a `%` not followed by two hex
 *   digits becomes `%25` (`100%.jpg` → `100%25.jpg`). An existing `%XX` escape is never touched, so the rule
 *   applied to its own output changes nothing;
 * - a non-ASCII host name becomes its IDNA (punycode) form (`bücher.example` → `xn--bcher-kva.example`), the
 *   form DNS and TLS use;
 * - rejected with the reason: a control character (tab, line break...) anywhere, an empty host, or a host with
 *   characters no host name can hold (a space, `%`, `<`...), or anything the WHATWG parser still refuses after
 *   encoding, with its reason from url-problem.ts ("port 99999 is out of range (1-65535)", an IPv4-looking host
 *   that is not one, a bad IPv6 literal or punycode label); port 0 too, which nothing can connect to.
 */
import { domainToASCII } from 'node:url';
import { httpUrlProblem } from '../url-problem.js';

export type InputUrl =
  | {
      ok: true;
      /** The URL as it is used: checked, submitted, recorded as `input`. */
      url: string;
      /** What was written, when it differs from `url` (it was encoded). */
      original?: string;
    }
  | { ok: false; reason: string };

/** Characters RFC 3986 allows outside `%XX` escapes. */
const ALLOWED = /[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=]/;
const HEX2 = /^[0-9A-Fa-f]{2}$/;
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
/** `scheme://authority` then the rest (path, query, fragment). */
const SHAPE = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^/?#]*)(.*)$/s;

/** Percent-encodes what RFC 3986 does not allow in `part` (path, query, fragment), keeping valid escapes. */
export function encodeUrlPart(part: string): string {
  let out = '';
  for (let i = 0; i < part.length; ) {
    const cp = part.codePointAt(i) as number;
    const ch = String.fromCodePoint(cp);
    if (ch === '%') {
      out += HEX2.test(part.slice(i + 1, i + 3)) ? '%' : '%25';
    } else if (ALLOWED.test(ch)) {
      out += ch;
    } else {
      for (const byte of Buffer.from(ch, 'utf8')) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    }
    i += ch.length;
  }
  return out;
}

/** Host characters a registered name or IP literal may hold (RFC 3986 `reg-name`, `IP-literal`), plus `:port`. */
const HOST_CHARS = /^[A-Za-z0-9\-._~!$&'()*+,;=:[\]]*$/;

/** The authority with a non-ASCII host name in IDNA form; a reason string when it cannot be a host. */
function encodeAuthority(authority: string): { authority: string } | { reason: string } {
  const at = authority.lastIndexOf('@');
  const userinfo = at === -1 ? '' : authority.slice(0, at + 1);
  const hostPort = at === -1 ? authority : authority.slice(at + 1);
  const portMatch = /^(.*?)(:\d*)?$/s.exec(hostPort) as RegExpExecArray;
  let host = portMatch[1] as string;
  const port = portMatch[2] ?? '';
  if (host.startsWith('[')) {
    // An IPv6 literal: the port follows the closing bracket.
    const close = hostPort.indexOf(']');
    host = hostPort.slice(0, close + 1);
    if (close === -1 || !/^(:\d*)?$/.test(hostPort.slice(close + 1))) return { reason: `the host "${hostPort}" is not a valid IPv6 literal` };
    return { authority: userinfo + hostPort };
  }
  if (host === '') return { reason: 'the URL has no host' };
  if (!HOST_CHARS.test(host)) {
    // eslint-disable-next-line no-control-regex -- only ASCII may stay as it is
    if (/^[^\u0000-\u0020%<>"`{}|\\^/?#@]+$/.test(host)) {
      const ascii = domainToASCII(host);
      if (ascii === '') return { reason: `the host "${host}" is not a valid international domain name` };
      return { authority: encodeUrlPart(userinfo) + ascii + port };
    }
    const bad = [...host].find((c) => !HOST_CHARS.test(c) && c.charCodeAt(0) < 128) ?? '?';
    return { reason: `the host "${host}" holds ${bad === ' ' ? 'a space' : `"${bad}"`}, which no host name can` };
  }
  return { authority: encodeUrlPart(userinfo) + host + port };
}

/**
 * Applies the rule above to an http(s) URL as written. Never throws. The result's `url`, given back to this
 * function, comes back unchanged.
 */
export function inputUrl(written: string): InputUrl {
  if (CONTROL.test(written)) {
    const c = CONTROL.exec(written)?.[0] ?? '';
    return { ok: false, reason: `the URL holds a control character (\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}); remove it` };
  }
  const m = SHAPE.exec(written);
  if (!m) return { ok: false, reason: 'not a URL of the form scheme://host/path' };
  const scheme = m[1] as string;
  const authority = encodeAuthority(m[2] as string);
  if ('reason' in authority) return { ok: false, reason: authority.reason };
  const url = scheme + authority.authority + encodeUrlPart(m[3] as string);
  const problem = httpUrlProblem(url);
  if (problem !== null) return { ok: false, reason: problem };
  return url === written ? { ok: true, url } : { ok: true, url, original: written };
}

/** What an HTTP request for a URL sends, taken from the URL as written (never normalised). */
export interface WireTarget {
  protocol: 'http:' | 'https:';
  /** The host to resolve and connect to (lower case, IDNA, brackets removed from IPv6). */
  hostname: string;
  port: number;
  /** The request target: path and query exactly as written (`/` when the path is empty); the fragment is not sent. */
  path: string;
  /** The Host header exactly as written (an explicit default port is kept). */
  hostHeader: string;
  /** `user:password` from the URL, decoded, for Basic authentication. */
  auth?: string;
}

/**
 * The request target of an http(s) URL, with the path, query and Host header exactly as written after `inputUrl`'s
 * rule. Throws a TypeError naming the reason when the URL cannot be requested.
 */
export function wireTarget(written: string): WireTarget {
  const checked = inputUrl(written);
  if (!checked.ok) throw new TypeError(checked.reason);
  const parsed = new URL(checked.url);
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new TypeError(`only http(s) URLs can be fetched (got ${parsed.protocol})`);
  }
  const m = SHAPE.exec(checked.url) as RegExpExecArray;
  const authority = m[2] as string;
  const rest = (m[3] as string).split('#')[0] as string;
  const at = authority.lastIndexOf('@');
  const target: WireTarget = {
    protocol: parsed.protocol,
    hostname: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: parsed.port === '' ? (parsed.protocol === 'https:' ? 443 : 80) : Number(parsed.port),
    path: rest === '' ? '/' : rest.startsWith('?') ? `/${rest}` : rest,
    hostHeader: at === -1 ? authority : authority.slice(at + 1),
  };
  if (at !== -1) target.auth = decodeURIComponent(authority.slice(0, at));
  return target;
}

/** `scheme://authority` of a URL as written (for resolving `/path` redirects without re-normalising). */
export function originOf(written: string): string | null {
  const m = SHAPE.exec(written);
  return m ? `${m[1] as string}${m[2] as string}` : null;
}
