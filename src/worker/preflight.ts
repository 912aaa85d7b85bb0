/**
 * Pre-flight checks of an input image before any credit is spent. The whole image is read (an HTTP GET through the
 * SSRF guard, or the local file), up to kie.ai's 10 MB input limit, and streamed through a structure reader
 * (image-structure.ts) that keeps a few bytes of state; the dimensions come from the first HEAD_BYTES (image-size:
 * sharp cannot read a truncated WebP). Why the whole file: a truncated image is only told from its end, kie.ai
 * fetches the whole file anyway, and the limit bounds the read. A fetched image is held in memory (at most 10 MB)
 * until it has been decoded; a local file is decoded from disk. What is established:
 * - the format, from the bytes (never the Content-Type); the size (Content-Length, the file's size, or counted);
 * - the image is complete (a JPEG/PNG/WebP cut short is refused before createTask), a PNG's critical chunks pass
 *   their CRC, and every pixel decodes without a decoder warning of damaged data (decode-check.ts: a JPEG with a
 *   run of zeros in the middle is refused with the decoder's "Corrupt JPEG data: ..."), unless `decode: false`;
 * - the EXIF orientation and the displayed width and height (sides swapped for orientations 5-8);
 * - animation: an animated image (more than one frame) is refused unless the batch allows it (--allow-animated);
 * - kie.ai's limits (KIE_API.md): jpeg/png/webp, at most 10 MB, longest output side at most 20,000 px.
 * A 401 or 403 answer is reported as access refused (`kind: 'access'`), apart from a bad image.
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { imageSize } from 'image-size';
import { ACCEPTED_MIME_TYPES, checkImageLimits, MAX_INPUT_BYTES, type Factor, type ModelName } from '../kie/models.js';
import { decodeCheck } from './decode-check.js';
import { decodedBody } from './http-body.js';
import { ImageStructure, swapsSides, type StructureReport } from './image-structure.js';
import { FetchRefused, guardedGet, type GuardOptions } from './ssrf.js';

/** Bytes of the image kept for the dimensions (the rest streams through the structure reader). @defaultValue 512 KiB */
export const HEAD_BYTES = 512 * 1024;

/** What the pre-flight read of an input tells. Unknown values are null. */
export interface ImageFacts {
  /** From the bytes: `image/jpeg`, `image/png`, `image/webp`, another image type, or null (not an image). */
  mimeType: string | null;
  bytes: number | null;
  /** Stored width and height, px (before the EXIF orientation). */
  width: number | null;
  height: number | null;
  /** EXIF orientation 1-8, null without one. */
  orientation?: number | null;
  /** Width and height as displayed (after the EXIF orientation), px. */
  displayWidth?: number | null;
  displayHeight?: number | null;
  /** Frames: 1 for a still image. */
  frames?: number | null;
}

/** Why a pre-flight failed: the host refused access (401/403), the image is unusable, or it could not be fetched. */
export type PreflightFailure = 'access' | 'image' | 'fetch';

export type PreflightResult =
  | { ok: true; facts: ImageFacts }
  /**
   * `permanent`: trying again later will not help (the input itself is wrong or refused); `unreadable`: a local
   * file that is gone or cannot be read.
   */
  | { ok: false; reason: string; permanent: boolean; kind: PreflightFailure; unreadable?: boolean };

export interface PreflightOptions extends Omit<GuardOptions, 'timeoutMs'> {
  /** Deadline of one fetch of the image. @defaultValue `15000` ms */
  timeoutMs?: number;
  /** Tries of a fetch that failed transiently (5xx, 429, reset, timeout). @defaultValue `3` */
  tries?: number;
  /** First wait between tries, doubled each time. @defaultValue `500` ms */
  retryDelayMs?: number;
  /** Let animated images through (`upscale enqueue --allow-animated`). @defaultValue false */
  allowAnimated?: boolean;
  /**
   * Decode every pixel of a complete image to find damaged data (decode-check.ts). Costs CPU per image (a 12 MP
   * JPEG: about 0.1-0.3 s) and holds a fetched image in memory while it is decoded. @defaultValue true
   */
  decode?: boolean;
}

/** The host answered 401 or 403. */
export class AccessRefused extends FetchRefused {
  constructor(status: number) {
    super(`the host refused access (HTTP ${status}): expired or private link?`, true);
  }
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

/** What was read of an image. */
export interface ImageRead {
  facts: ImageFacts;
  head: Buffer;
  /** The structure of the whole file; null when it was not read to the end (over the size limit). */
  structure: StructureReport | null;
  /** What to decode: the bytes of a fetched image, or a local file's path; absent when not read whole. */
  source?: Buffer | string;
}

/**
 * Checks what was read against kie.ai's limits for `model` × `factor` and the image truths (complete, still unless
 * `allowAnimated`). Returns the reason, or null when acceptable.
 */
export function judge(read: ImageRead, model: ModelName, factor: Factor | null, allowAnimated = false): string | null {
  const { facts, head, structure } = read;
  if (facts.mimeType === null) return describeNonImage(head);
  const limits = checkImageLimits({ ...facts, mimeType: facts.mimeType }, model, factor);
  if (limits) return limits;
  if (structure !== null) {
    if (structure.problem !== null) return `the image is incomplete or damaged: ${structure.problem}`;
    if (structure.frames > 1 && !allowAnimated) {
      return (
        `the image is animated (${structure.frames} frames); kie.ai documents still images only, so it is refused ` +
        `(enqueue with --allow-animated to submit it anyway)`
      );
    }
    if (facts.width === null || facts.height === null) return `the ${facts.mimeType} image is damaged (its dimensions cannot be read)`;
  }
  return null;
}

function factsOf(head: Buffer, bytes: number | null, structure: StructureReport | null): ImageFacts {
  const mimeType = sniffMimeType(head);
  const dims = mimeType !== null && (ACCEPTED_MIME_TYPES as readonly string[]).includes(mimeType) ? dimensionsOf(head) : null;
  const width = dims?.width ?? null;
  const height = dims?.height ?? null;
  const orientation = structure?.orientation ?? null;
  const swap = swapsSides(orientation);
  return {
    mimeType,
    bytes,
    width,
    height,
    orientation,
    displayWidth: swap ? height : width,
    displayHeight: swap ? width : height,
    frames: structure?.frames ?? null,
  };
}

/**
 * Streams `body` through the structure reader, keeping the first HEAD_BYTES, up to one byte over `maxBytes`
 * (then it stops: the image is over the limit). Transfer errors become transient `FetchRefused`.
 */
async function readImage(body: Readable, declared: number | null, keepAll: boolean): Promise<ImageRead> {
  const structure = new ImageStructure();
  const chunks: Buffer[] = [];
  let kept = 0;
  let seen = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      seen += chunk.length;
      if (seen > MAX_INPUT_BYTES) {
        body.destroy();
        if (kept < HEAD_BYTES) chunks.push(chunk.subarray(0, HEAD_BYTES - kept));
        const head = Buffer.concat(chunks).subarray(0, HEAD_BYTES);
        return { facts: factsOf(head, seen, null), head, structure: null };
      }
      if (keepAll || kept < HEAD_BYTES) {
        const part = keepAll ? chunk : chunk.subarray(0, HEAD_BYTES - kept);
        chunks.push(part);
        kept += part.length;
      }
      structure.push(chunk);
    }
  } catch (e) {
    throw new FetchRefused(`the answer broke off after ${seen} bytes (${(e as Error).message})`, false);
  }
  const all = Buffer.concat(chunks, kept);
  const head = all.subarray(0, HEAD_BYTES);
  const report = structure.end();
  const read: ImageRead = { facts: factsOf(head, declared ?? seen, report), head, structure: report };
  if (keepAll) read.source = all;
  return read;
}

/** Reads a local file whole (up to the size limit). A file that cannot be read is a permanent failure. */
export async function inspectFile(path: string): Promise<ImageRead | { error: string }> {
  const read = await readFile(path);
  if (!('error' in read) && read.structure !== null) read.source = path;
  return read;
}

async function readFile(path: string): Promise<ImageRead | { error: string }> {
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
    if (st.size > MAX_INPUT_BYTES) {
      const buffer = Buffer.alloc(Math.min(HEAD_BYTES, st.size));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
      const head = buffer.subarray(0, bytesRead);
      return { facts: factsOf(head, st.size, null), head, structure: null };
    }
    return await readImage(createReadStream(path, { fd: handle, autoClose: false }), st.size, false);
  } catch (e) {
    if (e instanceof FetchRefused) return { error: `${path} cannot be read (${e.message})` };
    return { error: `${path} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` };
  } finally {
    await handle.close();
  }
}

/** One GET of a URL, read whole up to the size limit. Throws FetchRefused (AccessRefused for 401/403). */
async function fetchImage(url: string, opts: PreflightOptions): Promise<ImageRead> {
  const res = await guardedGet(url, { ...opts, timeoutMs: opts.timeoutMs ?? 15_000 });
  if (res.status === 401 || res.status === 403) {
    res.response.destroy();
    throw new AccessRefused(res.status);
  }
  if (res.status < 200 || res.status > 299) {
    res.response.destroy();
    const transient = res.status === 429 || res.status === 408 || res.status >= 500;
    throw new FetchRefused(`fetching it answered HTTP ${res.status}`, !transient);
  }
  const body = decodedBody(res.response);
  const declared = body.codings.length === 0 ? res.contentLength : null;
  if (declared !== null && declared > MAX_INPUT_BYTES) {
    // Over the limit as announced: the first bytes tell the format, the rest is not fetched.
    const chunks: Buffer[] = [];
    let kept = 0;
    for await (const chunk of body.stream as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      kept += chunk.length;
      if (kept >= HEAD_BYTES) break;
    }
    res.response.destroy();
    const head = Buffer.concat(chunks, kept).subarray(0, HEAD_BYTES);
    return { facts: factsOf(head, declared, null), head, structure: null };
  }
  try {
    return await readImage(body.stream, declared, opts.decode ?? true);
  } finally {
    res.response.destroy();
  }
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
  let read: ImageRead;
  if ('path' in input) {
    const r = await inspectFile(input.path);
    if ('error' in r) return { ok: false, reason: r.error, permanent: true, kind: 'image', unreadable: true };
    read = r;
  } else {
    const tries = opts.tries ?? 3;
    for (let attempt = 1; ; attempt++) {
      try {
        read = await fetchImage(input.url, opts);
        break;
      } catch (e) {
        const refused = e instanceof FetchRefused ? e : new FetchRefused(String(e), false);
        const kind: PreflightFailure = refused instanceof AccessRefused ? 'access' : 'fetch';
        if (refused.permanent) return { ok: false, reason: refused.message, permanent: true, kind };
        if (attempt >= tries || opts.signal?.aborted) {
          return { ok: false, reason: `${refused.message} (after ${attempt} tries)`, permanent: false, kind };
        }
        await sleep((opts.retryDelayMs ?? 500) * 2 ** (attempt - 1));
      }
    }
  }
  const reason = judge(read, model, factor, opts.allowAnimated ?? false) ?? (opts.decode === false ? null : await decodeProblem(read));
  return reason === null ? { ok: true, facts: read.facts } : { ok: false, reason, permanent: true, kind: 'image' };
}

/** Why a complete image's data does not decode cleanly (decode-check.ts); null when it does or was not read whole. */
export async function decodeProblem(read: ImageRead): Promise<string | null> {
  if (read.source === undefined || read.structure?.complete !== true) return null;
  const verdict = await decodeCheck(read.source);
  if (verdict.ok) return null;
  return verdict.damaged
    ? `the image is incomplete or damaged: the file is complete but its data is damaged (the decoder reports "${verdict.message}")`
    : `the image is incomplete or damaged: it does not decode (${verdict.message})`;
}
