/**
 * Fetching an input image (createTask, file-url-upload) the way kie.ai would: http(s) only, a timeout, a size
 * cap read from the stream (not trusted from Content-Length alone), and the type read from the bytes by sharp.
 */
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
    const res = await fetch(parsed, {
      signal,
      redirect: 'follow',
      headers: { 'user-agent': 'kie-sim/1 (fetcher)' },
    });
    if (!res.ok) {
      await res.body?.cancel().catch(() => undefined);
      return { ok: false, reason: `fetching it answered HTTP ${res.status}` };
    }
    const declared = Number(res.headers.get('content-length') ?? NaN);
    if (declared > limits.maxBytes) {
      await res.body?.cancel().catch(() => undefined);
      return { ok: false, reason: tooLarge(declared, limits.maxBytes) };
    }
    const chunks: Buffer[] = [];
    let size = 0;
    if (res.body) {
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        size += chunk.byteLength;
        if (size > limits.maxBytes) return { ok: false, reason: tooLarge(size, limits.maxBytes, true) };
        chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      }
    }
    return { ok: true, data: Buffer.concat(chunks, size), contentType: res.headers.get('content-type') };
  } catch (e) {
    if (limits.signal.aborted) return { ok: false, reason: 'the simulator is stopping' };
    const err = e as Error & { cause?: { code?: string; message?: string } };
    if (err.name === 'TimeoutError')
      return { ok: false, reason: `fetching it timed out after ${limits.timeoutMs} ms` };
    const why = err.cause?.code ?? err.cause?.message ?? err.message;
    return { ok: false, reason: `it could not be fetched (${why})` };
  }
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
