/**
 * Why a URL is refused, in words a person can act on. The WHATWG URL parser (Node's `URL`) only says "Invalid URL";
 * every place that checks a URL (input lines, the environment, flags, request bodies) asks `urlProblem` instead, so a
 * refusal names its reason: "port 99999 is out of range (1-65535)", "the host "999.1.1.1" ends in a number, so it
 * must be an IPv4 address, and 999 is over 255", and so on. The checks follow the WHATWG URL Standard's
 * host and port parsing (https://url.spec.whatwg.org/#host-parsing, #port-state); the parser itself has the last
 * word, so nothing it accepts is refused here.
 */
import { domainToASCII } from 'node:url';

/** Schemes with an authority the WHATWG parser checks strictly ("special" schemes). */
const SPECIAL = new Set(['http', 'https', 'ws', 'wss', 'ftp']);
/** Code points no host may hold (WHATWG "forbidden domain code point", printable ASCII ones). */
const FORBIDDEN_HOST = /[ #%/:<>?@[\\\]^|"`{}]/;
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;

function describeChar(c: string): string {
  if (c === ' ') return 'a space';
  const code = c.charCodeAt(0);
  return code < 0x20 || code === 0x7f ? `a control character (\\x${code.toString(16).padStart(2, '0')})` : `"${c}"`;
}

/** The reason an IPv4-looking host (its last label a number) is not an IPv4 address; null when it is one. */
function ipv4Problem(host: string): string | null {
  const parts = host.split('.');
  if (parts[parts.length - 1] === '') parts.pop();
  if (parts.length > 4) return `the host "${host}" ends in a number, so it must be an IPv4 address, and it has ${parts.length} parts (at most 4)`;
  const values: number[] = [];
  for (const p of parts) {
    const m = /^(0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*)$/.exec(p);
    if (!m && /^0[0-9]+$/.test(p)) {
      return `the host "${host}" ends in a number, so it must be an IPv4 address, and "${p}" is not a number (a leading 0 makes it octal, without 8 or 9)`;
    }
    if (!m) return `the host "${host}" ends in a number, so it must be an IPv4 address, and "${p}" is not a number`;
    values.push(/^0[xX]/.test(p) ? (p.length === 2 ? 0 : parseInt(p.slice(2), 16)) : /^0./.test(p) ? parseInt(p, 8) : Number(p));
  }
  const last = values.pop() as number;
  const over = values.findIndex((v) => v > 255);
  if (over !== -1) return `the host "${host}" ends in a number, so it must be an IPv4 address, and ${parts[over] ?? ''} is over 255`;
  if (last >= 256 ** (5 - parts.length)) return `the host "${host}" ends in a number, so it must be an IPv4 address, and ${parts[parts.length - 1] ?? ''} is too large`;
  return null;
}

/** The reason the host of a non-special URL (`redis://`) cannot be one: WHATWG's forbidden host code points. */
function opaqueHostProblem(host: string): string | null {
  const bad = CONTROL.exec(host)?.[0] ?? /[ #/:<>?@[\\\]^|]/.exec(host)?.[0];
  return bad === undefined ? null : `the host "${host}" holds ${describeChar(bad)}, which no host name can`;
}

/** The reason `host` (between `//`-userinfo and the port, as written) cannot be a host; null when it can. */
function hostProblem(host: string): string | null {
  if (host === '') return 'the URL has no host';
  if (host.startsWith('[')) {
    if (!host.endsWith(']')) return `the host "${host}" is not a valid IPv6 address (no closing "]")`;
    try {
      new URL(`http://${host}/`);
      return null;
    } catch {
      return `the host "${host}" is not a valid IPv6 address`;
    }
  }
  // WHATWG percent-decodes a host before judging it (`ex%41mple.com` is `example.com`).
  let decoded = host;
  try {
    decoded = decodeURIComponent(host);
  } catch {
    // A bare % stays as it is, and is refused below.
  }
  const shown = decoded === host ? `"${host}"` : `"${host}" (decoded: "${decoded}")`;
  const control = CONTROL.exec(decoded)?.[0];
  if (control !== undefined) return `the host ${shown} holds ${describeChar(control)}, which no host name can`;
  const forbidden = FORBIDDEN_HOST.exec(decoded)?.[0];
  if (forbidden !== undefined) return `the host ${shown} holds ${describeChar(forbidden)}, which no host name can`;
  const labels = decoded.toLowerCase().split('.');
  if (labels.length > 1 && labels[labels.length - 1] === '') labels.pop();
  if (/^(0x[0-9a-f]*|[0-9]+)$/.test(labels[labels.length - 1] ?? '')) {
    const ipv4 = ipv4Problem(decoded);
    if (ipv4 !== null) return ipv4;
  }
  if (domainToASCII(decoded) === '') {
    return `the host ${shown} is not a valid domain name (an empty or over-long label, or a label that is not valid IDNA/punycode)`;
  }
  return null;
}

/** Why `text` is not a valid URL; null when the WHATWG parser accepts it. */
export function urlProblem(text: string): string | null {
  try {
    new URL(text);
    return null;
  } catch {
    // Find the reason below.
  }
  if (text.trim() === '') return 'the URL is empty';
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(text)?.[1];
  if (scheme === undefined) {
    return /^\/\//.test(text) ? 'it has no scheme (write https:' + text + ')' : 'it has no scheme such as https:// in front';
  }
  const special = SPECIAL.has(scheme.toLowerCase());
  const afterScheme = text.slice(scheme.length + 1);
  // Only a special scheme's URL, or one with "//", has an authority (host and port) to judge.
  if (!special && !afterScheme.startsWith('//')) return `it is not a valid ${scheme}: URL`;
  const rest = afterScheme.replace(special ? /^[/\\]*/ : /^\/\//, '');
  const authority = (special ? /^[^/\\?#]*/ : /^[^/?#]*/).exec(rest)?.[0] ?? '';
  const at = authority.lastIndexOf('@');
  const hostPort = at === -1 ? authority : authority.slice(at + 1);
  let host = hostPort;
  let port: string | null = null;
  if (hostPort.startsWith('[')) {
    const close = hostPort.indexOf(']');
    if (close !== -1) {
      host = hostPort.slice(0, close + 1);
      const after = hostPort.slice(close + 1);
      if (after !== '' && !after.startsWith(':')) return `the host "${hostPort}" has text after its "]" that is not a :port`;
      port = after === '' ? null : after.slice(1);
    }
  } else {
    const colon = hostPort.indexOf(':');
    if (colon !== -1) {
      host = hostPort.slice(0, colon);
      port = hostPort.slice(colon + 1);
    }
  }
  const hostReason = special || host.startsWith('[') ? hostProblem(host) : opaqueHostProblem(host);
  if (hostReason !== null) return hostReason;
  if (host === '' && port !== null) return 'the URL has a port but no host';
  if (port !== null && port !== '') {
    if (!/^\d+$/.test(port)) return `the port "${port}" is not a number (a port is 1-65535)`;
    if (Number(port) > 65535) return `port ${port} is out of range (1-65535)`;
  }
  return `it is not a valid ${scheme.toLowerCase()} URL (the URL parser refuses it)`;
}

/**
 * Why `text` cannot be used as an http(s) URL: `urlProblem`'s reason, another scheme, or port 0 (which WHATWG
 * accepts but nothing can connect to); null when it can.
 */
export function httpUrlProblem(text: string): string | null {
  const problem = urlProblem(text);
  if (problem !== null) return problem;
  const u = new URL(text);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return `it is a ${u.protocol} URL, not http(s)`;
  if (u.port === '0') return 'port 0 is out of range (1-65535)';
  return null;
}
