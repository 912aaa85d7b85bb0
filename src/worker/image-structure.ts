/**
 * Reads the container structure of a JPEG, PNG or WebP file as it streams past, keeping only a few bytes of
 * state, to tell whether the file is complete before any credit is spent on it, whether it is animated, and its
 * EXIF orientation. It does not decode pixels: a file cut short (the common fault: an interrupted upload or
 * transfer, a server closing early) lacks its end marker, and that is what is checked.
 *
 * - JPEG (ITU T.81 annex B): segments are walked by their lengths up to the first SOS; the entropy-coded data is
 *   scanned for markers (`FF00` is data, `FFD0`-`FFD7` are restarts, other markers are walked, so progressive
 *   files work) until EOI (`FFD9`). Complete when EOI is reached. An embedded EXIF thumbnail's EOI sits inside
 *   APP1 and is skipped with it.
 * - PNG (RFC 2083 / W3C PNG): chunks are walked by their lengths; complete when IEND and its CRC are read.
 *   `acTL` (APNG) gives the frame count, `eXIf` the EXIF block. The CRC of every critical chunk (IHDR, PLTE,
 *   IDAT, IEND: an upper-case first letter) is checked as it streams past (zlib's crc32, cheap): a mismatch is
 *   damaged data, refused as libpng refuses it. An ancillary chunk's bad CRC is ignored, as decoders drop the chunk.
 * - WebP (RIFF, Google's container spec): complete when every chunk inside the RIFF size has arrived. `ANMF`
 *   chunks are counted as frames, `EXIF` holds the EXIF block.
 * - EXIF orientation: tag 0x0112 of IFD0 of the TIFF structure (EXIF 2.32, CIPA DC-008), values 1-8.
 */

import { crc32 } from 'node:zlib';

export type StructureFormat = 'jpeg' | 'png' | 'webp';

export interface StructureReport {
  format: StructureFormat | null;
  /** Every byte the format needs arrived, up to its end marker. */
  complete: boolean;
  /** Why the file is not complete or not well formed; null when it is. */
  problem: string | null;
  /** Frames: 1 for a still image, the animation's frame count otherwise. */
  frames: number;
  /** EXIF orientation 1-8, null without one. */
  orientation: number | null;
  /** Bytes seen. */
  bytes: number;
}

/** Largest EXIF block kept to read the orientation from. */
const MAX_EXIF_BYTES = 256 * 1024;

type Step =
  | { kind: 'read'; n: number; then: (b: Buffer) => void }
  | { kind: 'skip'; n: number; then: () => void; tap?: (b: Buffer) => void }
  | { kind: 'scan' }
  | { kind: 'done' }
  | { kind: 'fail'; why: string };

/** The orientation tag of a TIFF-structured EXIF block (optionally starting with `Exif\0\0`); null when absent. */
export function exifOrientation(block: Buffer): number | null {
  let tiff = block;
  if (tiff.subarray(0, 6).toString('latin1') === 'Exif\0\0') tiff = tiff.subarray(6);
  if (tiff.length < 8) return null;
  const order = tiff.subarray(0, 2).toString('latin1');
  if (order !== 'II' && order !== 'MM') return null;
  const le = order === 'II';
  const u16 = (o: number) => (le ? tiff.readUInt16LE(o) : tiff.readUInt16BE(o));
  const u32 = (o: number) => (le ? tiff.readUInt32LE(o) : tiff.readUInt32BE(o));
  if (u16(2) !== 42) return null;
  const ifd = u32(4);
  if (ifd + 2 > tiff.length) return null;
  const count = u16(ifd);
  for (let i = 0; i < count; i++) {
    const e = ifd + 2 + i * 12;
    if (e + 12 > tiff.length) return null;
    if (u16(e) === 0x0112) {
      const v = u16(e + 8);
      return v >= 1 && v <= 8 ? v : null;
    }
  }
  return null;
}

/** True for orientations that turn the picture by 90° (5-8): displayed width and height are swapped. */
export function swapsSides(orientation: number | null): boolean {
  return orientation !== null && orientation >= 5 && orientation <= 8;
}

export class ImageStructure {
  private chunks: Buffer[] = [];
  private queued = 0;
  private step: Step;
  private seen = 0;
  private format: StructureFormat | null = null;
  private frames = 1;
  private orientation: number | null = null;
  /** JPEG scan state: the previous byte of the entropy-coded data was 0xFF. */
  private ff = false;
  /** WebP: bytes of the RIFF file still to come (after the 12-byte header). */
  private riffLeft = 0;
  private anmf = 0;

  constructor() {
    this.step = { kind: 'read', n: 12, then: (b) => this.start(b) };
  }

  push(chunk: Buffer): void {
    this.seen += chunk.length;
    if (this.step.kind === 'done' || this.step.kind === 'fail') return;
    this.chunks.push(chunk);
    this.queued += chunk.length;
    this.run();
  }

  end(): StructureReport {
    const base = { format: this.format, frames: this.format === 'webp' && this.anmf > 0 ? this.anmf : this.frames, orientation: this.orientation, bytes: this.seen };
    if (this.step.kind === 'done') return { ...base, complete: true, problem: null };
    if (this.step.kind === 'fail') return { ...base, complete: false, problem: this.step.why };
    if (this.format === null) return { ...base, complete: false, problem: this.seen < 12 ? `the file is only ${this.seen} bytes long` : 'not a JPEG, PNG or WebP file' };
    const end = { jpeg: 'its end marker (EOI)', png: 'its IEND chunk', webp: 'the end its RIFF header announces' }[this.format];
    return { ...base, complete: false, problem: `the ${this.format.toUpperCase()} file is truncated: it ends after ${this.seen} bytes, before ${end}` };
  }

  private fail(why: string): void {
    this.step = { kind: 'fail', why };
    this.chunks = [];
    this.queued = 0;
  }

  private take(n: number): Buffer {
    const first = this.chunks[0];
    if (first !== undefined && first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.queued -= n;
      return first.subarray(0, n);
    }
    const all = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks, this.queued);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.queued = rest.length;
    return out;
  }

  private run(): void {
    for (;;) {
      const step = this.step;
      if (step.kind === 'read') {
        if (this.queued < step.n) return;
        step.then(this.take(step.n));
      } else if (step.kind === 'skip') {
        const n = Math.min(step.n, this.queued);
        const skipped = this.take(n);
        step.tap?.(skipped);
        step.n -= n;
        if (step.n > 0) return;
        step.then();
      } else if (step.kind === 'scan') {
        if (!this.scan()) return;
      } else return;
    }
  }

  private start(h: Buffer): void {
    if (h[0] === 0xff && h[1] === 0xd8 && h[2] === 0xff) {
      this.format = 'jpeg';
      this.chunks.unshift(h.subarray(2));
      this.queued += h.length - 2;
      this.step = { kind: 'read', n: 2, then: (m) => this.jpegMarker(m) };
    } else if (h.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) {
      this.format = 'png';
      this.chunks.unshift(h.subarray(8));
      this.queued += h.length - 8;
      this.step = { kind: 'read', n: 8, then: (c) => this.pngChunk(c) };
    } else if (h.subarray(0, 4).toString('latin1') === 'RIFF' && h.subarray(8, 12).toString('latin1') === 'WEBP') {
      this.format = 'webp';
      this.riffLeft = h.readUInt32LE(4) - 4;
      this.webpNext();
    } else this.fail('not a JPEG, PNG or WebP file');
  }

  // --- JPEG ---

  private jpegMarker(m: Buffer): void {
    if (m[0] !== 0xff) return this.fail(`the JPEG structure is damaged (no marker where one must be, after ${this.seen - this.queued - 2} bytes)`);
    this.jpegSegment(m[1] as number);
  }

  /** Handles the marker `code` (the byte after 0xFF). */
  private jpegSegment(code: number): void {
    if (code === 0xff) {
      this.step = { kind: 'read', n: 1, then: (b) => this.jpegSegment(b[0] as number) }; // fill byte
      return;
    }
    if (code === 0xd9) {
      this.step = { kind: 'done' };
      return;
    }
    if ((code >= 0xd0 && code <= 0xd7) || code === 0x01) {
      this.step = { kind: 'read', n: 2, then: (m) => this.jpegMarker(m) };
      return;
    }
    this.step = {
      kind: 'read',
      n: 2,
      then: (l) => {
        const len = l.readUInt16BE(0) - 2;
        if (len < 0) return this.fail('the JPEG structure is damaged (a segment length below 2)');
        const next = () => {
          this.step = code === 0xda ? { kind: 'scan' } : { kind: 'read', n: 2, then: (m) => this.jpegMarker(m) };
        };
        if (code === 0xe1 && this.orientation === null && len >= 14) {
          this.step = {
            kind: 'read',
            n: len,
            then: (b) => {
              if (b.subarray(0, 6).toString('latin1') === 'Exif\0\0') this.orientation = exifOrientation(b);
              next();
            },
          };
        } else this.step = { kind: 'skip', n: len, then: next };
      },
    };
  }

  /** Scans entropy-coded data for the next marker; false when more bytes are needed. */
  private scan(): boolean {
    while (this.chunks.length > 0) {
      const buf = this.chunks[0] as Buffer;
      let i = 0;
      if (this.ff) {
        this.ff = false;
        const code = buf[0] as number;
        if (code === 0x00 || (code >= 0xd0 && code <= 0xd7)) i = 1;
        else if (code === 0xff) {
          this.ff = true;
          i = 1;
          this.take(i);
          continue;
        } else {
          this.take(1);
          this.jpegSegment(code);
          return true;
        }
      }
      for (;;) {
        const at = buf.indexOf(0xff, i);
        if (at === -1 || at === buf.length - 1) {
          if (at === buf.length - 1) this.ff = true;
          this.take(buf.length);
          break;
        }
        const code = buf[at + 1] as number;
        if (code === 0x00 || (code >= 0xd0 && code <= 0xd7) || code === 0xff) {
          i = code === 0xff ? at + 1 : at + 2;
          continue;
        }
        this.take(at + 2);
        this.jpegSegment(code);
        return true;
      }
    }
    return false;
  }

  // --- PNG ---

  private pngChunk(c: Buffer): void {
    const at = this.seen - this.queued - 8;
    const len = c.readUInt32BE(0);
    const type = c.subarray(4, 8).toString('latin1');
    if (len > 0x7fffffff || !/^[A-Za-z]{4}$/.test(type)) return this.fail('the PNG structure is damaged (an invalid chunk header)');
    const next = () => (this.step = { kind: 'read', n: 8, then: (h) => this.pngChunk(h) });
    const critical = type.charCodeAt(0) < 0x61;
    // The CRC covers the type and the data; it is computed as the data streams past, for critical chunks only.
    // (zlib's crc32 of an empty buffer with no memory behind it is 0, the start value: empty pieces are left out.)
    let crc = critical ? crc32(c.subarray(4, 8)) : 0;
    const checkCrc = (then: () => void): void => {
      if (!critical) {
        this.step = { kind: 'skip', n: 4, then };
        return;
      }
      this.step = {
        kind: 'read',
        n: 4,
        then: (b) => {
          if (b.readUInt32BE(0) !== crc >>> 0) {
            return this.fail(`the PNG data is damaged: the ${type} chunk at byte ${at} fails its CRC check`);
          }
          then();
        },
      };
    };
    const data = (afterData: () => void) => {
      this.step = critical
        ? { kind: 'skip', n: len, then: afterData, tap: (b) => (crc = b.length > 0 ? crc32(b, crc) : crc) }
        : { kind: 'skip', n: len, then: afterData };
    };
    if (type === 'IEND') {
      data(() => checkCrc(() => (this.step = { kind: 'done' })));
    } else if (type === 'acTL' && len >= 8) {
      this.step = { kind: 'read', n: len + 4, then: (b) => ((this.frames = Math.max(1, b.readUInt32BE(0))), next()) };
    } else if (type === 'eXIf' && len <= MAX_EXIF_BYTES) {
      this.step = { kind: 'read', n: len + 4, then: (b) => ((this.orientation = exifOrientation(b.subarray(0, len))), next()) };
    } else data(() => checkCrc(next));
  }

  // --- WebP ---

  private webpNext(): void {
    if (this.riffLeft <= 0) {
      this.step = this.riffLeft === 0 ? { kind: 'done' } : { kind: 'fail', why: 'the WebP structure is damaged (a chunk runs past the RIFF size)' };
      return;
    }
    this.step = {
      kind: 'read',
      n: 8,
      then: (h) => {
        const type = h.subarray(0, 4).toString('latin1');
        const size = h.readUInt32LE(4);
        const padded = size + (size & 1);
        this.riffLeft -= 8 + padded;
        if (this.riffLeft < 0) return this.fail('the WebP structure is damaged (a chunk runs past the RIFF size)');
        if (type === 'ANMF') this.anmf += 1;
        if (type === 'EXIF' && size <= MAX_EXIF_BYTES) {
          this.step = { kind: 'read', n: padded, then: (b) => ((this.orientation = exifOrientation(b.subarray(0, size))), this.webpNext()) };
        } else this.step = { kind: 'skip', n: padded, then: () => this.webpNext() };
      },
    };
  }
}

/** Walks a whole buffer (tests, files already in memory). */
export function imageStructure(data: Buffer): StructureReport {
  const s = new ImageStructure();
  s.push(data);
  return s.end();
}
