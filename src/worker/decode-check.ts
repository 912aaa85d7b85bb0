/**
 * Decodes a whole image to tell whether its data is intact, for the pre-flight (inputs) and the download
 * verification (outputs). A file can be complete (every byte up to its end marker, image-structure.ts) and still
 * damaged inside: a run of zeros in the middle of a JPEG's entropy-coded data is the common case. Only decoding
 * tells, so every pixel is decoded (sharp to raw pixels in one buffer, dropped at once). The buffer is the whole
 * decoded frame (width × height × bands bytes): sharp's stream output holds the same buffer before pushing it in
 * one chunk (sharp's lib/output.js `_pipeline`), so a stream would cost the same memory and more CPU.
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
 * - libvips keeps its error text in one buffer per process, and a decode that ends on another thread clears or
 *   overwrites it. A warning raised while another image decodes thus reaches us without its text (sharp's "Warning
 *   treated as error due to failOn setting") or with another's ("error in tile 0 x 576"): measured, 2 in 15 decodes
 *   of a damaged JPEG beside a good one. Judged a harmless warning, that let a damaged JPEG through the pre-flight to
 *   a paid createTask (a CI run). So checks run one at a time per process (`CHECK_SLOTS`, shared by the pre-flight
 *   and the download lane's verification), and a warning that is not damage is believed only when two decodes in a
 *   row report the same text (at most `WARNING_TRIES` decodes): other sharp work in the process (a thumbnail, a
 *   header read) can still garble one.
 *
 * Limits (measured, see README "Pre-flight checks"): a JPEG has no checksum, so damage the entropy decoder does not
 * stumble over (a flipped byte, a few zeros) decodes "cleanly" into wrong pixels and cannot be told; lossy WebP
 * (VP8) likewise decodes most damaged data without complaint. Shrink-on-load is not used: at 1/4 and 1/8 scale
 * libjpeg skipped the warning of a damaged file that full decoding reports.
 */
import pLimit from 'p-limit';
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

/** sharp's words when the decoder's warning text was lost to another decode (sharp's src/pipeline.cc). */
const LOST_TEXT = 'Warning treated as error due to failOn setting';
/** Decodes at most, with failOn 'warning', for two to agree on a warning's text. */
export const WARNING_TRIES = 4;
/** Checks at once per process. */
export const CHECK_SLOTS = 1;
const slots = pLimit(CHECK_SLOTS);

/** The lines of an error's message, trimmed, empty ones and sharp's lost-text line left out. */
function messageLines(e: unknown): string[] {
  return (e instanceof Error ? e.message : String(e))
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && l !== LOST_TEXT);
}

/** Pixels are decoded to raw and dropped: about 6× cheaper than `stats()`. */
async function decodeAll(input: string | Buffer, failOn: 'warning' | 'error'): Promise<void> {
  await sharp(input, { failOn, limitInputPixels: false, sequentialRead: true }).raw().toBuffer();
}

/**
 * Decodes every pixel of the image at `input` (a path or the bytes). Never throws: the verdict says what the
 * decoder reported.
 */
export function decodeCheck(input: string | Buffer): Promise<DecodeVerdict> {
  return slots(() => check(input));
}

async function check(input: string | Buffer): Promise<DecodeVerdict> {
  let previous: string | null = null;
  let warning: string | null = null;
  for (let tries = 1; warning === null; tries++) {
    try {
      await decodeAll(input, 'warning');
      // A decode that passes after one that warned: the warning came from another image's decode.
      return { ok: true, warning: null };
    } catch (e) {
      const lines = messageLines(e);
      const damage = lines.find((l) => DAMAGE.some((re) => re.test(l)));
      if (damage !== undefined) return { ok: false, damaged: true, message: damage };
      const text = lines[0] ?? null;
      if (text !== null && text === previous) warning = text;
      else if (tries >= WARNING_TRIES) warning = text ?? `a decoder warning whose text was lost ${tries} times`;
      previous = text;
    }
  }
  try {
    await decodeAll(input, 'error');
    return { ok: true, warning };
  } catch (again) {
    return { ok: false, damaged: false, message: messageLines(again)[0] ?? String(again) };
  }
}
