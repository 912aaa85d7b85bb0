/**
 * Fetching an input image (createTask, file-url-upload) the way kie.ai would: http(s) only, a timeout, a size
 * cap read from the stream (not trusted from Content-Length alone), and the type read from the bytes by sharp.
 * The request sends the path, query and Host exactly as written (no URL normalisation), as a fetcher that keeps
 * signed URLs working does; redirects (at most 5) are followed. A body sent with `Content-Encoding` (gzip,
 * deflate, br; RFC 9110 section 8.4) is decoded, as any standard HTTP client does, so a host that gzips images
 * anyway serves the image (the pipeline's pre-flight decodes it too: the two agree); the size cap counts the
 * decoded bytes. Kept apart from the pipeline's own decoder (src/worker/http-body.ts) on purpose, as everything
 * in the simulator is.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Transform, type Readable } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate, createInflateRaw } from 'node:zlib';
import sharp from 'sharp';

/** Input files larger than this are refused (KIE_API.md: at most 10 MB). */
export const MAX_INPUT_BYTES = 10 * 1024 * 1024;
/** Longest output side allowed (longest input side × factor). */
export const MAX_OUTPUT_SIDE = 20_000;
/** The formats kie.ai takes, as sharp names them. */
export const ACCEPTED_FORMATS: Readonly<Record<string, string>> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
};

export type Fetched = { ok: true; data: Buffer; contentType: string | null } | { ok: false; reason: string };

export interface FetchLimits {
  timeoutMs: number;
  maxBytes: number;
  /** Aborts the fetch when the simulator stops. */
  signal: AbortSignal;
}

/** Fetches `url` within the limits; never throws. */
export async function fetchLimited(url: string, limits: FetchLimits): Promise<Fetched> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { ok: false, reason: `"${url}" is not a URL` };
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    return { ok: false, reason: `only http(s) URLs can be fetched (got ${parsed.protocol})` };
  }
  const signal = AbortSignal.any([AbortSignal.timeout(limits.timeoutMs), limits.signal]);
  try {
    const res = await getExact(url, signal);
    const status = res.statusCode ?? 0;
    if (status < 200 || status > 299) {
      res.destroy();
      return { ok: false, reason: `fetching it answered HTTP ${status}` };
    }
    const body = decoded(res);
    if ('reason' in body) {
      res.destroy();
      return { ok: false, reason: body.reason };
    }
    const declared = body.identity ? Number(res.headers['content-length'] ?? NaN) : NaN;
    if (declared > limits.maxBytes) {
      res.destroy();
      return { ok: false, reason: tooLarge(declared, limits.maxBytes) };
    }
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of body.stream as AsyncIterable<Buffer>) {
        size += chunk.byteLength;
        if (size > limits.maxBytes) {
          res.destroy();
          body.stream.destroy();
          return { ok: false, reason: tooLarge(size, limits.maxBytes, true) };
        }
        chunks.push(chunk);
      }
    } catch (e) {
      if (!body.identity && !limits.signal.aborted && !signal.aborted) {
        res.destroy();
        return { ok: false, reason: `its ${body.codings} body does not decode (${(e as Error).message})` };
      }
      throw e;
    }
    return { ok: true, data: Buffer.concat(chunks, size), contentType: res.headers['content-type'] ?? null };
  } catch (e) {
    if (limits.signal.aborted) return { ok: false, reason: 'the simulator is stopping' };
    const err = e as Error & { code?: string; cause?: { code?: string; message?: string } };
    if (err.name === 'TimeoutError' || (err.name === 'AbortError' && signal.aborted))
      return { ok: false, reason: `fetching it timed out after ${limits.timeoutMs} ms` };
    const why = err.code ?? err.cause?.code ?? err.cause?.message ?? err.message;
    return { ok: false, reason: `it could not be fetched (${why})` };
  }
}

/** GET with the path, query and Host as written; follows up to 5 redirects. */
async function getExact(written: string, signal: AbortSignal): Promise<IncomingMessage> {
  let url = written;
  for (let hop = 0; ; hop++) {
    const parsed = new URL(url);
    const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)([^#]*)/.exec(url);
    const authority = (m?.[1] ?? parsed.host).replace(/^.*@/, '');
    const rest = m?.[2] ?? '';
    const path = rest === '' ? '/' : rest.startsWith('?') ? `/${rest}` : rest;
    const request = parsed.protocol === 'https:' ? httpsRequest : httpRequest;
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = request({
        protocol: parsed.protocol,
        hostname: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: parsed.port || undefined,
        path,
        signal,
        headers: { host: authority, 'user-agent': 'kie-sim/1 (fetcher)' },
      });
      req.once('response', resolve);
      req.once('error', reject);
      req.end();
    });
    const location = res.headers.location;
    if (![301, 302, 303, 307, 308].includes(res.statusCode ?? 0) || location === undefined || hop >= 5) return res;
    res.destroy();
    url = /^[A-Za-z][A-Za-z0-9+.-]*:/.test(location) ? location : new URL(location, url).href;
  }
}

/** A deflate decoder for the zlib-wrapped form (RFC 9110) and the raw form some servers send (first byte 0x78: zlib). */
function inflateEither(): Transform {
  let chosen: Transform | null = null;
  const front: Transform = new Transform({
    transform(chunk: Buffer, _enc, done) {
      if (chosen === null) {
        chosen = (chunk[0] ?? 0) === 0x78 ? createInflate() : createInflateRaw();
        chosen.on('data', (d: Buffer) => front.push(d));
        chosen.on('error', (e) => front.destroy(e));
      }
      chosen.write(chunk, () => done());
    },
    flush(done) {
      if (chosen === null) return done();
      chosen.once('end', () => done());
      chosen.end();
    },
  });
  return front;
}

/** `res`'s content, decoded by its Content-Encoding (listed codings undone last first); a reason for an unknown one. */
function decoded(res: IncomingMessage): { stream: Readable; identity: boolean; codings: string } | { reason: string } {
  const header = String(res.headers['content-encoding'] ?? '').toLowerCase();
  const codings = header.split(',').map((c) => c.trim()).filter((c) => c !== '' && c !== 'identity');
  let stream: Readable = res;
  for (const coding of [...codings].reverse()) {
    const decoder =
      coding === 'gzip' || coding === 'x-gzip' ? createGunzip() : coding === 'deflate' ? inflateEither() : coding === 'br' ? createBrotliDecompress() : null;
    if (decoder === null) return { reason: `it is sent with Content-Encoding "${header}", which cannot be decoded` };
    const source = stream;
    source.once('error', (e) => decoder.destroy(e));
    stream = source.pipe(decoder);
  }
  return { stream, identity: codings.length === 0, codings: codings.join(', ') };
}

function tooLarge(bytes: number, max: number, atLeast = false): string {
  const mb = (n: number) => (n / 1024 / 1024).toFixed(1);
  return `the file is ${atLeast ? 'over ' : ''}${mb(bytes)} MB, over the ${mb(max)} MB limit`;
}

export interface ImageFacts {
  /** sharp's format name: jpeg, png, webp, gif, ... */
  format: string;
  width: number;
  height: number;
}

/** Reads format and size from the bytes; null when they are not an image sharp knows. */
export async function inspectImage(data: Buffer): Promise<ImageFacts | null> {
  try {
    const m = await sharp(data).metadata();
    if (!m.format || !m.width || !m.height) return null;
    return { format: m.format, width: m.width, height: m.height };
  } catch {
    return null;
  }
}
