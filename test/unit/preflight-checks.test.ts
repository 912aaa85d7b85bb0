import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderSampleImage } from '../../src/sim/images.js';
import { dimensionsOf, HEAD_BYTES, judge, preflight, sniffMimeType } from '../../src/worker/preflight.js';
import { closedPort } from '../helpers/ports.js';

const TOPAZ = 'topaz/image-upscale';
const RECRAFT = 'recraft/crisp-upscale';
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'preflight-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('format and dimensions from the first bytes', () => {
  it.each(['png', 'jpg', 'webp'] as const)('%s: type from the bytes, dimensions from a 4 KB head of a large image', async (format) => {
    const full = await renderSampleImage('pf', 3000, 2000, format);
    const head = full.subarray(0, 4096);
    expect(sniffMimeType(head)).toBe(format === 'jpg' ? 'image/jpeg' : `image/${format}`);
    expect(dimensionsOf(head)).toEqual({ width: 3000, height: 2000 });
  });

  it('names other formats and non-images', async () => {
    expect(sniffMimeType(await renderSampleImage('g', 8, 8, 'gif'))).toBe('image/gif');
    expect(sniffMimeType(Buffer.from('<!DOCTYPE html><html>'))).toBeNull();
  });
});

describe('judge', () => {
  const facts = (over: object = {}) => ({ mimeType: 'image/png', bytes: 1000, width: 1000, height: 800, ...over });
  const html = Buffer.from('<!DOCTYPE html><html></html>');
  const whole = { format: 'png' as const, complete: true, problem: null, frames: 1, orientation: null, bytes: 1000 };
  const read = (f: ReturnType<typeof facts>, head: Buffer, complete: boolean) => ({ facts: f, head, structure: complete ? whole : null });
  it('passes what kie.ai accepts', () => {
    expect(judge(read(facts(), Buffer.alloc(0), true), TOPAZ, '8')).toBeNull();
    expect(judge(read(facts({ width: 2500 }), Buffer.alloc(0), true), TOPAZ, '8')).toBeNull(); // 20,000 exactly
  });
  it('refuses with a reason a person can act on', () => {
    expect(judge(read(facts({ mimeType: null }), html, true), TOPAZ, '2')).toMatch(/not an image \(the content is an HTML page\)/);
    expect(judge(read(facts({ mimeType: 'image/gif' }), Buffer.alloc(0), true), TOPAZ, '2')).toMatch(/format image\/gif is not accepted/);
    expect(judge(read(facts({ bytes: 10 * 1024 * 1024 + 1 }), Buffer.alloc(0), true), TOPAZ, '2')).toMatch(/10\.0 MB, over kie.ai's 10 MB/);
    expect(judge(read(facts({ width: 2501 }), Buffer.alloc(0), true), TOPAZ, '8')).toMatch(/output would be 20008 px .*2501×800 × 8.*20,000 px cap/);
    expect(judge(read(facts({ width: 10_001 }), Buffer.alloc(0), true), RECRAFT, null)).toMatch(/20002 px/);
  });
  it('lets unknown dimensions through unless the whole file was read', () => {
    expect(judge(read(facts({ width: null, height: null }), Buffer.alloc(0), false), TOPAZ, '2')).toBeNull();
    expect(judge(read(facts({ width: null, height: null }), Buffer.alloc(0), true), TOPAZ, '2')).toMatch(/damaged/);
  });
});

describe('preflight of local files', () => {
  it('reads the head and the size of a file', async () => {
    const path = join(dir, 'ok.webp');
    await writeFile(path, await renderSampleImage('ok', 640, 480, 'webp'));
    const r = await preflight({ path }, TOPAZ, '4', { allowPrivate: false });
    expect(r).toMatchObject({ ok: true, facts: { mimeType: 'image/webp', width: 640, height: 480 } });
  });

  it('refuses a big file by its size without reading it all, and a file that is gone as unreadable', async () => {
    const path = join(dir, 'big.png');
    const png = await renderSampleImage('big', 64, 48, 'png');
    await writeFile(path, Buffer.concat([png, Buffer.alloc(11 * 1024 * 1024)]));
    expect(HEAD_BYTES).toBeLessThan(11 * 1024 * 1024);
    expect(await preflight({ path }, TOPAZ, '2', { allowPrivate: false })).toMatchObject({ ok: false, permanent: true, reason: expect.stringMatching(/11\.0 MB/) as unknown });
    expect(await preflight({ path: join(dir, 'gone.png') }, TOPAZ, '2', { allowPrivate: false })).toMatchObject({ ok: false, unreadable: true, reason: expect.stringMatching(/no longer exists/) as unknown });
  });

  it('decodes a complete file: a JPEG with 2 KB zeroed in the middle is refused with the decoder\'s words (unless decode: false)', async () => {
    const path = join(dir, 'zeroed.jpg');
    await writeFile(path, await renderSampleImage('zero2-photo', 800, 600, 'jpg'));
    expect(await preflight({ path }, TOPAZ, '2', { allowPrivate: false })).toEqual({
      ok: false,
      permanent: true,
      kind: 'image',
      reason:
        'the image is incomplete or damaged: the file is complete but its data is damaged ' +
        '(the decoder reports "VipsJpeg: Corrupt JPEG data: premature end of data segment")',
    });
    expect(await preflight({ path }, TOPAZ, '2', { allowPrivate: false, decode: false })).toMatchObject({ ok: true });
    const png = join(dir, 'zeroed.png');
    await writeFile(png, await renderSampleImage('zero2-photo', 800, 600, 'png'));
    expect(await preflight({ path: png }, TOPAZ, '2', { allowPrivate: false })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^the image is incomplete or damaged: the PNG data is damaged: the IDAT chunk at byte \d+ fails its CRC check$/) as unknown,
    });
  });
});

describe('pre-flight fetch of a host that refuses the connection', () => {
  it('tries again: an image server restarting for a moment (refused, then up) passes on a later try', async () => {
    const port = await closedPort();
    const png = await renderSampleImage('restart', 40, 30, 'png');
    const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'image/png' }).end(png));
    // Up 150 ms after the first try was refused; the tries are 300 ms, then 600 ms apart.
    const up = new Promise<void>((resolve) => setTimeout(() => server.listen(port, '127.0.0.1', resolve), 150));
    try {
      const r = await preflight({ url: `http://127.0.0.1:${port}/x.png` }, TOPAZ, '2', { allowPrivate: true, retryDelayMs: 300 });
      expect(r).toMatchObject({ ok: true, facts: { width: 40, height: 30 } });
    } finally {
      await up;
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('a host that keeps refusing fails after the last try, not as a permanent refusal', async () => {
    const port = await closedPort();
    const r = await preflight({ url: `http://127.0.0.1:${port}/x.png` }, TOPAZ, '2', { allowPrivate: true, retryDelayMs: 50 });
    expect(r).toMatchObject({ ok: false, permanent: false, kind: 'fetch', reason: expect.stringMatching(/could not be fetched \(ECONNREFUSED\) \(after 3 tries\)$/) as unknown });
  });
});
