import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, get, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderSampleImage } from '../../src/sim/images.js';
import { decodedBody } from '../../src/worker/http-body.js';
import { verifyOutput } from '../../src/worker/verify-output.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'verify-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function file(name: string, data: Buffer): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, data);
  return path;
}

describe('verifyOutput', () => {
  it('accepts the expected displayed size, flags the same size turned by 90°, refuses another size', async () => {
    const path = await file('ok.png', await renderSampleImage('o', 120, 80, 'png'));
    expect(await verifyOutput(path, { expected: { width: 120, height: 80 } })).toEqual({ ok: true, format: 'png', width: 120, height: 80, orientationMismatch: false });
    expect(await verifyOutput(path, { expected: { width: 80, height: 120 } })).toMatchObject({ ok: true, orientationMismatch: true });
    expect(await verifyOutput(path, { expected: { width: 240, height: 160 } })).toEqual({
      ok: false,
      problem: 'the output is 120×80, expected 240×160 (the displayed input size × the scale)',
    });
    // An output carrying EXIF orientation 6 is judged by its displayed size.
    const tagged = await file('tagged.jpg', await sharp(await renderSampleImage('t', 120, 80, 'png')).jpeg().withMetadata({ orientation: 6 }).toBuffer());
    expect(await verifyOutput(tagged, { expected: { width: 80, height: 120 } })).toMatchObject({ ok: true, width: 80, height: 120, orientationMismatch: false });
  });

  it.each(['jpg', 'png', 'webp'] as const)('refuses a %s cut short', async (format) => {
    const whole = await renderSampleImage('cut', 200, 150, format);
    const path = await file(`cut.${format}`, whole.subarray(0, Math.floor(whole.length / 2)));
    const v = await verifyOutput(path, { expected: null });
    expect(v.ok).toBe(false);
    expect(!v.ok && v.problem).toMatch(/^the output is incomplete: the (JPEG|PNG|WEBP) file is truncated/);
  });

  it('refuses a file that is no image', async () => {
    const v = await verifyOutput(await file('x.bin', Buffer.from('<html>oops</html>')), { expected: null });
    expect(v).toMatchObject({ ok: false, problem: expect.stringMatching(/^the output does not decode as an image/) as unknown });
  });
});

describe('decodedBody: Content-Encoding honoured, wire bytes counted', () => {
  const content = Buffer.from('image bytes '.repeat(500));
  const bodies: Record<string, Buffer> = {
    gzip: gzipSync(content),
    deflate: deflateSync(content),
    'deflate-raw': deflateRawSync(content),
    br: brotliCompressSync(content),
    identity: content,
  };
  const server = createServer((req, res) => {
    const name = (req.url ?? '/').slice(1);
    const coding = name === 'deflate-raw' ? 'deflate' : name;
    res.writeHead(200, { 'content-encoding': coding, 'content-length': bodies[name]?.length ?? 0 }).end(bodies[name]);
  });
  let port = 0;
  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it.each(Object.keys(bodies))('%s', async (name) => {
    const res = await new Promise<IncomingMessage>((r) => get(`http://127.0.0.1:${port}/${name}`, r));
    const body = decodedBody(res);
    const chunks: Buffer[] = [];
    for await (const c of body.stream as AsyncIterable<Buffer>) chunks.push(c);
    expect(Buffer.concat(chunks).equals(content)).toBe(true);
    expect(body.wireBytes()).toBe(bodies[name]?.length);
  });
});
