/**
 * Pre-flight checks of an input image before any credit is spent: a bounded read of its first bytes (an HTTP GET
 * through the SSRF guard, or a local file's head) tells the format (from the bytes, never the Content-Type), the
 * file size (Content-Length, the file's size, or counted up to the limit) and the dimensions (image-size: sharp
 * cannot read a truncated WebP). The limits are kie.ai's (KIE_API.md): jpeg/png/webp, at most 10 MB, longest output
 * side (longest input side × scale) at most 20,000 px.
 */
import { open } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { imageSize } from 'image-size';
import { ACCEPTED_MIME_TYPES, checkImageLimits, MAX_INPUT_BYTES, type Factor, type ModelName } from '../kie/models.js';
import { FetchRefused, guardedGet, readHead, type GuardOptions } from './ssrf.js';

/** Bytes of the image read for the checks. @defaultValue 512 KiB */
export const HEAD_BYTES = 512 * 1024;

/** What the first bytes of an input tell. Unknown values are null. */
export interface ImageFacts {
  /** From the bytes: `image/jpeg`, `image/png`, `image/webp`, another image type, or null (not an image). */
  mimeType: string | null;
  bytes: number | null;
  width: number | null;
  height: number | null;
}

export type PreflightResult =
  | { ok: true; facts: ImageFacts }
  /**
   * `permanent`: trying again later will not help (the input itself is wrong or refused); `unreadable`: a local
   * file that is gone or cannot be read.
   */
  | { ok: false; reason: string; permanent: boolean; unreadable?: boolean };

export interface PreflightOptions extends Omit<GuardOptions, 'timeoutMs'> {
  /** Deadline of one fetch of the image's head. @defaultValue `15000` ms */
  timeoutMs?: number;
  /** Tries of a fetch that failed transiently (5xx, 429, reset, timeout). @defaultValue `3` */
  tries?: number;
  /** First wait between tries, doubled each time. @defaultValue `500` ms */
  retryDelayMs?: number;
}

/** The type named by the magic bytes; null when they are no image format kie.ai or browsers know. */
export function sniffMimeType(head: Buffer): string | null {
  if (head.length >= 3 && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return 'image/jpeg';
  if (head.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'image/png';
  if (head.subarray(0, 4).toString('latin1') === 'RIFF' && head.subarray(8, 12).toString('latin1') === 'WEBP') return 'image/webp';
  if (head.subarray(0, 4).toString('latin1') === 'GIF8') return 'image/gif';
  if (head.subarray(0, 2).toString('latin1') === 'BM') return 'image/bmp';
  const tiff = head.subarray(0, 4).toString('latin1');
  if (tiff === 'II*\0' || tiff === 'MM\0*') return 'image/tiff';
  if (head.subarray(4, 12).toString('latin1').startsWith('ftypavif')) return 'image/avif';
  if (/^ftyp(heic|heix|mif1)/.test(head.subarray(4, 12).toString('latin1'))) return 'image/heic';
  return null;
}

/** Width and height from an image's first bytes; null when they are not there (or not an image). */
export function dimensionsOf(head: Buffer): { width: number; height: number } | null {
  try {
    const d = imageSize(head);
    return d.width > 0 && d.height > 0 ? { width: d.width, height: d.height } : null;
  } catch {
    return null;
  }
}

/** What the bytes look like when they are not an image, for the reason. */
function describeNonImage(head: Buffer): string {
  const text = head.subarray(0, 256).toString('utf8').trimStart().toLowerCase();
  if (text.startsWith('<!doctype html') || text.startsWith('<html')) return 'not an image (the content is an HTML page)';
  if (head.length === 0) return 'not an image (the content is empty)';
  return 'not an image (the content is no known image format)';
}

/**
 * Checks facts against kie.ai's limits for `model` × `factor`. Returns the reason, or null when acceptable.
 * Unknown dimensions pass (kie.ai decides); `complete` says the whole file was read, so unreadable dimensions
 * mean a damaged image.
 */
export function judge(facts: ImageFacts, head: Buffer, complete: boolean, model: ModelName, factor: Factor | null): string | null {
  if (facts.mimeType === null) return describeNonImage(head);
  const limits = checkImageLimits({ ...facts, mimeType: facts.mimeType }, model, factor);
  if (limits) return limits;
  if (complete && (facts.width === null || facts.height === null)) {
    return `the ${facts.mimeType} image is damaged (its dimensions cannot be read)`;
  }
  return null;
}

function factsOf(head: Buffer, bytes: number | null): ImageFacts {
  const mimeType = sniffMimeType(head);
  const dims = mimeType !== null && (ACCEPTED_MIME_TYPES as readonly string[]).includes(mimeType) ? dimensionsOf(head) : null;
  return { mimeType, bytes, width: dims?.width ?? null, height: dims?.height ?? null };
}

/** Reads a local file's head and size. A file that cannot be read is a permanent failure. */
export async function inspectFile(path: string): Promise<{ facts: ImageFacts; head: Buffer; complete: boolean } | { error: string }> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { error: code === 'ENOENT' ? `${path} no longer exists` : `${path} cannot be read (${code ?? (e as Error).message})` };
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) return { error: `${path} is not a regular file` };
    const buffer = Buffer.alloc(Math.min(HEAD_BYTES, st.size));
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    const head = buffer.subarray(0, bytesRead);
    return { facts: factsOf(head, st.size), head, complete: bytesRead >= st.size };
  } catch (e) {
    return { error: `${path} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` };
  } finally {
    await handle.close();
  }
}

/** One bounded GET of a URL's head. Throws FetchRefused. */
async function fetchHead(url: string, opts: PreflightOptions): Promise<{ facts: ImageFacts; head: Buffer; complete: boolean }> {
  const res = await guardedGet(url, { ...opts, timeoutMs: opts.timeoutMs ?? 15_000 });
  if (res.status < 200 || res.status > 299) {
    res.response.destroy();
    const transient = res.status === 429 || res.status === 408 || res.status >= 500;
    throw new FetchRefused(`fetching it answered HTTP ${res.status}`, !transient);
  }
  // Without a Content-Length the size is counted (bytes past the head are dropped) up to one byte over the limit.
  const count = res.contentLength === null ? MAX_INPUT_BYTES + 1 : HEAD_BYTES;
  const read = await readHead(res.response, HEAD_BYTES, count);
  const bytes = res.contentLength ?? (read.complete ? read.seen : read.seen > MAX_INPUT_BYTES ? read.seen : null);
  const facts = factsOf(read.head, bytes);
  return { facts, head: read.head, complete: read.complete };
}

/**
 * Pre-flight of one input against `model` × `factor`: a URL (http/https, through the SSRF guard) or a local path.
 * Transient fetch failures are tried again (bounded); a failure after the last try is not permanent.
 */
export async function preflight(
  input: { url: string } | { path: string },
  model: ModelName,
  factor: Factor | null,
  opts: PreflightOptions,
): Promise<PreflightResult> {
  let read: { facts: ImageFacts; head: Buffer; complete: boolean };
  if ('path' in input) {
    const r = await inspectFile(input.path);
    if ('error' in r) return { ok: false, reason: r.error, permanent: true, unreadable: true };
    read = r;
  } else {
    const tries = opts.tries ?? 3;
    for (let attempt = 1; ; attempt++) {
      try {
        read = await fetchHead(input.url, opts);
        break;
      } catch (e) {
        const refused = e instanceof FetchRefused ? e : new FetchRefused(String(e), false);
        if (refused.permanent) return { ok: false, reason: refused.message, permanent: true };
        if (attempt >= tries || opts.signal?.aborted) {
          return { ok: false, reason: `${refused.message} (after ${attempt} tries)`, permanent: false };
        }
        await sleep((opts.retryDelayMs ?? 500) * 2 ** (attempt - 1));
      }
    }
  }
  const reason = judge(read.facts, read.head, read.complete, model, factor);
  return reason === null ? { ok: true, facts: read.facts } : { ok: false, reason, permanent: true };
}
