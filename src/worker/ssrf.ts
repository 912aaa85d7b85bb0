/**
 * A guarded HTTP GET for URLs that come from users (input images) or from kie.ai (results): the host is resolved
 * once, every address it resolves to is checked against the private-address policy (`isPrivateAddress`), and the
 * connection is pinned to a checked address so a second DNS answer cannot swap in another (DNS rebinding).
 * Redirects are followed by hand, each hop checked the same way, at most `maxRedirects`. The body is read up to a
 * byte budget and the rest is aborted.
 *
 * The request is the URL exactly as written (src/producer/input-url.ts): its path and query go on the wire byte for
 * byte (no `./`/`../` removal, no re-escaping of `'`), and the Host header keeps an explicit default port, so a host
 * that signs the exact URL sees what was signed. An absolute or `/path` redirect target is kept as written too; a
 * relative-path target (`x.jpg`, `../x.jpg`) is resolved by the WHATWG URL parser, the only way to resolve it.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { isPrivateAddress } from '../producer/address-policy.js';
import { originOf, wireTarget, type WireTarget } from '../producer/input-url.js';
import { DEFAULT_USER_AGENT } from '../kie/version.js';
import { formatDuration } from '../config/units.js';

/** Why a guarded fetch did not get a usable answer. `permanent` failures will not improve by trying again. */
export class FetchRefused extends Error {
  override readonly name = 'FetchRefused';
  constructor(
    message: string,
    readonly permanent: boolean,
  ) {
    super(message);
  }
}

export interface GuardOptions {
  /** Let URLs reach private, loopback and link-local addresses (ALLOW_PRIVATE_URLS). */
  allowPrivate: boolean;
  /** Redirects followed, each re-checked. @defaultValue `5` */
  maxRedirects?: number;
  /** Deadline of the whole exchange, redirects included. @defaultValue `30000` ms */
  timeoutMs?: number;
  /** Resolves a host name to every address (tests inject one). @defaultValue `dns.promises.lookup` with `all: true` */
  resolve?: (hostname: string) => Promise<{ address: string; family: number }[]>;
  /** The address policy. @defaultValue `isPrivateAddress` from src/producer/address-policy.ts */
  isPrivate?: (ip: string) => boolean;
  signal?: AbortSignal;
  /** Extra request headers (e.g. `accept-encoding`). */
  headers?: Record<string, string>;
}

/** An answered GET whose body is still to be read (or dropped with `response.destroy()`). */
export interface GuardedResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The URL that answered, after redirects. */
  url: string;
  /** Content-Length when the server sent a valid one. */
  contentLength: number | null;
  response: IncomingMessage;
  signal: AbortSignal;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

const defaultResolve = (hostname: string) => dnsLookup(hostname, { all: true, verbatim: true });

/** Resolves the target's host and checks every address; returns the address to connect to. */
async function checkedAddress(target: WireTarget, opts: GuardOptions): Promise<{ address: string; family: number }> {
  const host = target.hostname;
  const isPrivate = opts.isPrivate ?? isPrivateAddress;
  let addresses: { address: string; family: number }[];
  if (isIP(host) !== 0) addresses = [{ address: host, family: isIP(host) }];
  else {
    try {
      addresses = await (opts.resolve ?? defaultResolve)(host);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      throw new FetchRefused(`host ${host} does not resolve (${code})`, code === 'ENOTFOUND');
    }
    if (addresses.length === 0) throw new FetchRefused(`host ${host} does not resolve`, true);
  }
  if (!opts.allowPrivate) {
    const bad = addresses.find((a) => isPrivate(a.address));
    if (bad) {
      throw new FetchRefused(
        `host ${host} resolves to the private address ${bad.address}; set ALLOW_PRIVATE_URLS=true to allow`,
        true,
      );
    }
  }
  return addresses[0] as { address: string; family: number };
}

function pinnedLookup(pinned: { address: string; family: number }): LookupFunction {
  return (_hostname, options, callback) => {
    if (options.all) callback(null, [pinned]);
    else callback(null, pinned.address, pinned.family);
  };
}

function once(target: WireTarget, pinned: { address: string; family: number }, signal: AbortSignal, extra: Record<string, string>): Promise<IncomingMessage> {
  const request = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request({
      protocol: target.protocol,
      hostname: target.hostname,
      port: target.port,
      path: target.path,
      ...(target.auth === undefined ? {} : { auth: target.auth }),
      ...(target.protocol === 'https:' && isIP(target.hostname) === 0 ? { servername: target.hostname } : {}),
      method: 'GET',
      lookup: pinnedLookup(pinned),
      signal,
      headers: { host: target.hostHeader, 'user-agent': DEFAULT_USER_AGENT, accept: 'image/*,*/*;q=0.5', ...extra },
    });
    req.once('response', resolve);
    req.once('error', reject);
    req.end();
  });
}

function describeError(e: unknown, signal: AbortSignal, timeoutMs: number): FetchRefused {
  if (e instanceof FetchRefused) return e;
  if (signal.aborted) return new FetchRefused(`no complete answer within ${formatDuration(timeoutMs)}`, false);
  const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
  // A refused connection is tried again: a server restarting for a moment refuses too (a trial's image server did,
  // and three images failed for good). A name that does not resolve, a host out of reach, a bad URL are final.
  const permanent = code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'ERR_INVALID_URL';
  return new FetchRefused(`it could not be fetched (${code})`, permanent);
}

/**
 * GETs `input`, following redirects by hand. Resolves with the answering response (any status, body unread)
 * or rejects with `FetchRefused`. The caller must read or destroy `response`.
 */
export async function guardedGet(input: string, opts: GuardOptions): Promise<GuardedResponse> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const signal = AbortSignal.any([AbortSignal.timeout(timeoutMs), ...(opts.signal ? [opts.signal] : [])]);
  const maxRedirects = opts.maxRedirects ?? 5;
  let url = input;
  for (let hop = 0; ; hop++) {
    const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(url)?.[1]?.toLowerCase();
    if (scheme !== undefined && scheme !== 'http' && scheme !== 'https') {
      throw new FetchRefused(`only http(s) URLs can be fetched (${hop > 0 ? 'a redirect led to' : 'got'} ${scheme}:)`, true);
    }
    let target: WireTarget;
    try {
      target = wireTarget(url);
    } catch (e) {
      const why = (e as Error).message;
      throw new FetchRefused(hop > 0 ? `a redirect points to an unusable URL (${url}): ${why}` : `"${input}" cannot be fetched: ${why}`, true);
    }
    let res: IncomingMessage;
    try {
      res = await once(target, await checkedAddress(target, opts), signal, opts.headers ?? {});
    } catch (e) {
      throw describeError(e, signal, timeoutMs);
    }
    const location = res.headers.location;
    if (!REDIRECTS.has(res.statusCode ?? 0) || location === undefined) {
      const declared = Number(res.headers['content-length']);
      return {
        status: res.statusCode ?? 0,
        headers: res.headers,
        url,
        contentLength: res.headers['content-length'] !== undefined && Number.isSafeInteger(declared) && declared >= 0 ? declared : null,
        response: res,
        signal,
      };
    }
    res.destroy();
    if (hop >= maxRedirects) throw new FetchRefused(`more than ${maxRedirects} redirects`, true);
    url = redirectTarget(url, location);
  }
}

/** Where a redirect leads, kept as written when absolute or `/path`-relative (see the module comment). */
function redirectTarget(from: string, location: string): string {
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(location)) return location;
  if (location.startsWith('//')) return `${from.slice(0, from.indexOf('//'))}${location}`;
  if (location.startsWith('/')) return `${originOf(from) ?? ''}${location}`;
  try {
    return new URL(location, from).href;
  } catch {
    throw new FetchRefused(`a redirect points to an invalid URL (${location})`, true);
  }
}

export interface HeadRead {
  /** The first bytes of the body, at most `keepBytes`. */
  head: Buffer;
  /** Body bytes seen (counted past `keepBytes` up to `countBytes`). */
  seen: number;
  /** The whole body was read (`seen` is its size). */
  complete: boolean;
}

/**
 * Reads the start of a body: keeps the first `keepBytes`, counts on (discarding) up to `countBytes`, then aborts.
 * With `countBytes` = `keepBytes` nothing past the kept bytes is read.
 */
export async function readHead(res: IncomingMessage, keepBytes: number, countBytes = keepBytes): Promise<HeadRead> {
  const chunks: Buffer[] = [];
  let kept = 0;
  let seen = 0;
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      seen += chunk.length;
      if (kept < keepBytes) {
        const part = chunk.subarray(0, keepBytes - kept);
        chunks.push(part);
        kept += part.length;
      }
      if (seen >= countBytes) {
        res.destroy();
        return { head: Buffer.concat(chunks, kept), seen, complete: false };
      }
    }
  } catch (e) {
    throw new FetchRefused(`the answer broke off after ${seen} bytes (${(e as Error).message})`, false);
  }
  return { head: Buffer.concat(chunks, kept), seen, complete: true };
}
