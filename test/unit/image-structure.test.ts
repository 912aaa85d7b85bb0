import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { renderSampleImage } from '../../src/sim/images.js';
import { exifOrientation, ImageStructure, imageStructure } from '../../src/worker/image-structure.js';
import { judge, type ImageRead } from '../../src/worker/preflight.js';

const TOPAZ = 'topaz/image-upscale';

/** Walks `data` fed in `size`-byte pieces (a network's chunks). */
function walk(data: Buffer, size: number) {
  const s = new ImageStructure();
  for (let i = 0; i < data.length; i += size) s.push(data.subarray(i, i + size));
  return s.end();
}

describe('image structure: complete, frames, orientation', () => {
  it.each(['jpg', 'png', 'webp'] as const)('%s: complete whole, truncated at 60 percent (in any chunking)', async (format) => {
    const full = await renderSampleImage('truth', 320, 240, format);
    for (const size of [1, 7, 4096, full.length]) {
      expect(walk(full, size)).toMatchObject({ complete: true, problem: null, frames: 1 });
    }
    const cut = full.subarray(0, Math.floor(full.length * 0.6));
    const r = imageStructure(cut);
    expect(r.complete).toBe(false);
    expect(r.problem).toMatch(/is truncated: it ends after \d+ bytes, before/);
    expect(walk(cut, 13).problem).toBe(r.problem);
  });

  it('a progressive JPEG and a JPEG with an EXIF thumbnail-like APP1 are complete; orientation is read', async () => {
    const px = await renderSampleImage('p', 200, 100, 'png');
    const progressive = await sharp(px).jpeg({ progressive: true }).toBuffer();
    expect(imageStructure(progressive)).toMatchObject({ complete: true, orientation: null });
    const turned = await sharp(px).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    expect(imageStructure(turned)).toMatchObject({ complete: true, orientation: 6 });
    expect(imageStructure(await sharp(px).webp().withMetadata({ orientation: 8 }).toBuffer()).orientation).toBe(8);
    expect(imageStructure(await sharp(px).png().withMetadata({ orientation: 3 }).toBuffer()).orientation).toBe(3);
  });

  it('counts the frames of an animated WebP (the issue\'s 10 frames) and of an APNG', async () => {
    const webp = await renderSampleImage('anim10-clip', 64, 48, 'webp');
    expect(imageStructure(webp)).toMatchObject({ complete: true, frames: 10 });
    // APNG: an acTL chunk (num_frames = 3) before IDAT.
    const png = await renderSampleImage('still', 8, 8, 'png');
    const acTL = Buffer.alloc(20);
    acTL.writeUInt32BE(8, 0);
    acTL.write('acTL', 4, 'latin1');
    acTL.writeUInt32BE(3, 8);
    const apng = Buffer.concat([png.subarray(0, 33), acTL, png.subarray(33)]);
    expect(imageStructure(apng)).toMatchObject({ complete: true, frames: 3 });
  });

  it('checks the CRC of a PNG\'s critical chunks in any chunking; an ancillary chunk\'s bad CRC is left to the decoder', async () => {
    const png = await renderSampleImage('crc', 120, 90, 'png');
    const idat = png.indexOf('IDAT');
    const damaged = Buffer.from(png);
    damaged.writeUInt8(damaged.readUInt8(idat + 20) ^ 0x01, idat + 20);
    for (const size of [1, 5, 4096, png.length]) {
      expect(walk(damaged, size)).toMatchObject({ complete: false, problem: `the PNG data is damaged: the IDAT chunk at byte ${idat - 4} fails its CRC check` });
      expect(walk(png, size)).toMatchObject({ complete: true, problem: null });
    }
    const text = Buffer.concat([Buffer.from([0, 0, 0, 5]), Buffer.from('tEXtx\0abc', 'latin1'), Buffer.alloc(4)]); // CRC 0: wrong
    expect(imageStructure(Buffer.concat([png.subarray(0, 33), text, png.subarray(33)]))).toMatchObject({ complete: true, problem: null });
  });

  it('reads orientation from big- and little-endian TIFF blocks', () => {
    const block = (le: boolean, value: number) => {
      const b = Buffer.alloc(26);
      b.write(le ? 'II' : 'MM', 0, 'latin1');
      const w16 = (v: number, o: number) => (le ? b.writeUInt16LE(v, o) : b.writeUInt16BE(v, o));
      const w32 = (v: number, o: number) => (le ? b.writeUInt32LE(v, o) : b.writeUInt32BE(v, o));
      w16(42, 2);
      w32(8, 4);
      w16(1, 8);
      w16(0x0112, 10);
      w16(3, 12);
      w32(1, 14);
      w16(value, 18);
      return b;
    };
    expect(exifOrientation(block(true, 6))).toBe(6);
    expect(exifOrientation(Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), block(false, 5)]))).toBe(5);
    expect(exifOrientation(block(true, 9))).toBeNull();
  });
});

describe('judge with the image truths', () => {
  const read = (data: Buffer): ImageRead => {
    const s = imageStructure(data);
    return { facts: { mimeType: 'image/webp', bytes: data.length, width: 64, height: 48, frames: s.frames }, head: data, structure: s };
  };
  it('refuses a truncated image and an animated one (unless allowed), with reasons', async () => {
    const jpeg = await renderSampleImage('cut', 320, 240, 'jpg');
    const cut = jpeg.subarray(0, Math.floor(jpeg.length * 0.6));
    expect(judge({ ...read(cut), facts: { mimeType: 'image/jpeg', bytes: cut.length, width: 320, height: 240 } }, TOPAZ, '2')).toMatch(
      /^the image is incomplete or damaged: the JPEG file is truncated: it ends after \d+ bytes, before its end marker \(EOI\)$/,
    );
    const anim = read(await renderSampleImage('anim10-x', 64, 48, 'webp'));
    expect(judge(anim, TOPAZ, '2')).toBe(
      'the image is animated (10 frames); kie.ai documents still images only, so it is refused (enqueue with --allow-animated to submit it anyway)',
    );
    expect(judge(anim, TOPAZ, '2', true)).toBeNull();
  });
});
