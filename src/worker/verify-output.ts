/**
 * Verification of a downloaded output file before it is accepted (the download lane calls it with the temp file's
 * path; any storage backend can do the same before publishing a file):
 * 1. complete: a JPEG/PNG/WebP must reach its end marker (image-structure.ts). A body cut short without an error
 *    (HTTP/1.0 with no Content-Length, closed halfway) is caught here;
 * 2. decodable: every pixel is decoded (decode-check.ts): a decoder warning of damaged data ("Corrupt JPEG data:
 *    premature end of data segment" for a JPEG with zeros in the middle) fails it, a warning about metadata the
 *    decoder worked around (an unknown Adobe transform, a duplicate sRGB chunk) does not;
 * 3. size: its displayed size (after its own EXIF orientation) must equal `expected` (the input's displayed size ×
 *    the model's scale: recraft ×2, topaz × the factor). The same size turned by 90° is accepted but flagged
 *    (`orientationMismatch`): the pixels are what was paid for, the orientation was lost or applied twice.
 */
import { createReadStream } from 'node:fs';
import sharp, { type Metadata } from 'sharp';
import { decodeCheck } from './decode-check.js';
import { ImageStructure, swapsSides } from './image-structure.js';

export interface OutputExpectation {
  /** The displayed size the output must have, px; null when unknown (size not checked). */
  expected: { width: number; height: number } | null;
}

export type OutputVerdict =
  | {
      ok: true;
      /** sharp's format name: jpeg, png, webp, ... */
      format: string;
      /** Displayed size of the output, px. */
      width: number;
      height: number;
      /** The output is the expected size turned by 90°. */
      orientationMismatch: boolean;
    }
  | { ok: false; problem: string };

/** Checks the file at `path`. Never throws for a bad file: the verdict says why. */
export async function verifyOutput(path: string, expectation: OutputExpectation): Promise<OutputVerdict> {
  const structure = new ImageStructure();
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) structure.push(chunk);
  const report = structure.end();
  if (report.format !== null && report.problem !== null) return { ok: false, problem: `the output is incomplete: ${report.problem}` };
  let meta: Metadata;
  try {
    meta = await sharp(path, { failOn: 'error', limitInputPixels: false }).metadata();
  } catch (e) {
    return { ok: false, problem: `the output does not decode as an image (${(e as Error).message.split('\n')[0] ?? ''})` };
  }
  const decoded = await decodeCheck(path);
  if (!decoded.ok) {
    return {
      ok: false,
      problem: decoded.damaged
        ? `the output's image data is damaged (${decoded.message})`
        : `the output does not decode as an image (${decoded.message})`,
    };
  }
  if (!meta.width || !meta.height || !meta.format) return { ok: false, problem: 'the output does not decode as an image' };
  const swap = swapsSides(meta.orientation ?? null);
  const width = swap ? meta.height : meta.width;
  const height = swap ? meta.width : meta.height;
  const { expected } = expectation;
  if (expected === null || (width === expected.width && height === expected.height)) {
    return { ok: true, format: meta.format, width, height, orientationMismatch: false };
  }
  if (width === expected.height && height === expected.width) {
    return { ok: true, format: meta.format, width, height, orientationMismatch: true };
  }
  return { ok: false, problem: `the output is ${width}×${height}, expected ${expected.width}×${expected.height} (the displayed input size × the scale)` };
}
