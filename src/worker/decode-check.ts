/**
 * Decodes a whole image to tell whether its data is intact, for the pre-flight (inputs) and the download
 * verification (outputs). A file can be complete (every byte up to its end marker, image-structure.ts) and still
 * damaged inside: a run of zeros in the middle of a JPEG's entropy-coded data is the common case. Only decoding
 * tells, so every pixel is decoded (sharp to raw pixels, streamed into a sink that drops them: libvips decodes in
 * strips, so memory stays bounded).
 *
 * The rule, from what the decoders report (libjpeg's messages are jerror.h's, libpng's and libwebp's are errors):
 * - sharp decodes with `failOn: 'warning'`. A warning that says the data is damaged fails the image: libjpeg's
 *   "Corrupt JPEG data: ..." (premature end of data segment, bad Huffman code, extraneous bytes before a marker,
 *   a missing restart marker) and "Premature end of JPEG file". PNG (CRC, zlib) and WebP (VP8/VP8L) damage are
 *   errors of their decoders and fail at `failOn: 'error'` already.
 * - Any other warning is metadata the decoder worked around (libjpeg's "Unknown Adobe color transform code",
 *   "bad ICC marker"; libpng's "sRGB: duplicate", "iCCP: ..." are not even raised as failures by libvips): the image
 *   is decoded again with `failOn: 'error'` and passes when that succeeds, with the warning reported.
 * - Bytes after a JPEG's EOI or a PNG's IEND are not read by any decoder and are not judged.
 *
 * Limits (measured, see README "Pre-flight checks"): a JPEG has no checksum, so damage the entropy decoder does not
 * stumble over (a flipped byte, a few zeros) decodes "cleanly" into wrong pixels and cannot be told; lossy WebP
 * (VP8) likewise decodes most damaged data without complaint. Shrink-on-load is not used: at 1/4 and 1/8 scale
 * libjpeg skipped the warning of a damaged file that full decoding reports.
 */
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import sharp from 'sharp';

/** Decoder messages that say the pixel data is damaged (libjpeg's JWRN_* texts, jerror.h). */
const DAMAGE = [/Corrupt JPEG data(?!: bad ICC marker)/i, /Premature end of JPEG file/i];

export type DecodeVerdict =
  | {
      ok: true;
      /** A warning the decoder worked around (metadata, not pixels); null when there was none that failed. */
      warning: string | null;
    }
  | {
      ok: false;
      /** True when the decoder said the data is damaged (a DAMAGE warning); false when it could not decode the file. */
      damaged: boolean;
      /** The decoder's message (its first line). */
      message: string;
    };

function firstLine(e: unknown): string {
  return ((e instanceof Error ? e.message : String(e)).split('\n')[0] ?? '').trim();
}

/** Pixels are decoded into a sink that drops them (raw output, streamed): about 6× cheaper than `stats()`. */
async function decodeAll(input: string | Buffer, failOn: 'warning' | 'error'): Promise<void> {
  const decoder = sharp(input, { failOn, limitInputPixels: false, sequentialRead: true }).raw();
  await pipeline(decoder, new Writable({ write: (_chunk, _encoding, done) => done() }));
}

/**
 * Decodes every pixel of the image at `input` (a path or the bytes). Never throws: the verdict says what the
 * decoder reported.
 */
export async function decodeCheck(input: string | Buffer): Promise<DecodeVerdict> {
  try {
    await decodeAll(input, 'warning');
    return { ok: true, warning: null };
  } catch (e) {
    const message = firstLine(e);
    if (DAMAGE.some((re) => re.test(message))) return { ok: false, damaged: true, message };
    try {
      await decodeAll(input, 'error');
      return { ok: true, warning: message };
    } catch (again) {
      return { ok: false, damaged: false, message: firstLine(again) };
    }
  }
}
