/**
 * The upload host's three endpoints: multipart stream, base64 and URL. Each answers kie's upload envelope;
 * the downloadUrl serves the same bytes, works as a createTask input, and expires after the (scaled) TTL.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startSimulator, type SimOptions, type Simulator } from '../../src/sim/index.js';
import {
  imageSize,
  makeImage,
  sampleImageUrl,
  simCall,
  topazBody,
  type SimAnswer,
} from '../helpers/images.js';
import { waitFor } from '../helpers/redis.js';

let sim: Simulator | undefined;
afterEach(async () => {
  await sim?.stop();
  sim = undefined;
});

async function start(o: Partial<SimOptions> = {}): Promise<Simulator> {
  sim = await startSimulator({
    apiKeys: ['k'],
    timeScale: 100,
    latency: { 'topaz/image-upscale': { medianMs: 2000, p95Ms: 4000 } },
    ...o,
  });
  return sim;
}

function expectUploadAnswer(
  json: SimAnswer['json'],
  fileName: string,
  filePath: string,
  size: number,
  mimeType: string,
): string {
  expect(json).toMatchObject({
    success: true,
    code: 200,
    data: { fileName, filePath, fileSize: size, mimeType },
  });
  expect(typeof json.msg).toBe('string');
  expect(Number.isNaN(Date.parse(json.data.uploadedAt as string))).toBe(false);
  return json.data.downloadUrl as string;
}

/** createTask with `url` as input, then poll until the task ends; returns the state. */
async function upscale(s: Simulator, url: string): Promise<{ state: string; resultJson: string }> {
  const a = await simCall(s.url, '/api/v1/jobs/createTask', { body: topazBody(url, '2') });
  expect(a.json.code, a.json.msg as string).toBe(200);
  const taskId = a.json.data.taskId as string;
  return waitFor(
    async () => {
      const r = await simCall(s.url, `/api/v1/jobs/recordInfo?taskId=${taskId}`);
      const data = r.json.data as { state: string; resultJson: string } | null;
      return data && ['success', 'fail'].includes(data.state) ? data : null;
    },
    { timeoutMs: 10_000, intervalMs: 20, what: 'task end' },
  );
}

describe('uploads', () => {
  it('file-stream-upload (multipart): stores the file, serves it, and createTask accepts its downloadUrl', async () => {
    const s = await start();
    const png = await makeImage(30, 20, 'png', 'upload');
    const form = new FormData();
    form.append('uploadPath', 'images/batch-1');
    form.append('fileName', 'cat photo.png');
    form.append('file', new Blob([png], { type: 'image/png' }), 'original.png');
    const a = await simCall(s.url, '/api/file-stream-upload', { rawBody: form });
    const url = expectUploadAnswer(
      a.json,
      'cat photo.png',
      'images/batch-1/cat photo.png',
      png.length,
      'image/png',
    );
    const got = Buffer.from(await (await fetch(url)).arrayBuffer());
    expect(got.equals(png)).toBe(true);

    const task = await upscale(s, url);
    expect(task.state).toBe('success');
    const out = (JSON.parse(task.resultJson) as { resultUrls: string[] }).resultUrls[0]!;
    expect(await imageSize(await (await fetch(out)).arrayBuffer())).toEqual({
      format: 'png',
      width: 60,
      height: 40,
    });
    expect(s.stats().uploads).toBe(1);
  });

  it('file-stream-upload takes the part file name when no fileName field is given, and refuses a body without a file', async () => {
    const s = await start();
    const form = new FormData();
    form.append('file', new Blob([await makeImage(8, 8, 'webp')], { type: 'image/webp' }), 'tiny.webp');
    const a = await simCall(s.url, '/api/file-stream-upload', { rawBody: form });
    expect(a.json.data).toMatchObject({
      fileName: 'tiny.webp',
      filePath: 'tiny.webp',
      mimeType: 'image/webp',
    });

    const empty = new FormData();
    empty.append('uploadPath', 'x');
    expect((await simCall(s.url, '/api/file-stream-upload', { rawBody: empty })).json).toMatchObject({
      success: false,
      code: 400,
    });
    const garbage = await simCall(s.url, '/api/file-stream-upload', {
      rawBody: 'no parts here',
      headers: { 'content-type': 'multipart/form-data; boundary=xyz' },
    });
    expect(garbage.json).toMatchObject({ success: false, code: 400 });
  });

  it('file-base64-upload: plain base64 and data URLs', async () => {
    const s = await start();
    const jpg = await makeImage(24, 16, 'jpg', 'b64');
    const plain = await simCall(s.url, '/api/file-base64-upload', {
      body: { base64Data: jpg.toString('base64'), uploadPath: 'b64', fileName: 'a.jpg' },
    });
    const url = expectUploadAnswer(plain.json, 'a.jpg', 'b64/a.jpg', jpg.length, 'image/jpeg');
    expect(Buffer.from(await (await fetch(url)).arrayBuffer()).equals(jpg)).toBe(true);

    const dataUrl = await simCall(s.url, '/api/file-base64-upload', {
      body: { base64Data: `data:image/jpeg;base64,${jpg.toString('base64')}` },
    });
    expect(dataUrl.json.data.fileName).toMatch(/^[0-9a-f]{16}\.jpg$/);
    expect((await upscale(s, dataUrl.json.data.downloadUrl as string)).state).toBe('success');

    const bad = await simCall(s.url, '/api/file-base64-upload', { body: { base64Data: '***' } });
    expect(bad.json).toMatchObject({ success: false, code: 400 });
  });

  it('file-url-upload: fetches the URL and stores it', async () => {
    const s = await start();
    const source = sampleImageUrl(s.url, 'remote', 20, 10, 'webp');
    const a = await simCall(s.url, '/api/file-url-upload', {
      body: { fileUrl: source, uploadPath: 'from-url' },
    });
    const expected = await makeImage(20, 10, 'webp', 'remote');
    const url = expectUploadAnswer(
      a.json,
      'remote-20x10.webp',
      'from-url/remote-20x10.webp',
      expected.length,
      'image/webp',
    );
    expect((await upscale(s, url)).state).toBe('success');
    const missing = await simCall(s.url, '/api/file-url-upload', {
      body: { fileUrl: `${s.url}/sim/images/nothing` },
    });
    expect(missing.json).toMatchObject({ success: false, code: 400 });
    expect(missing.json.msg).toMatch(/HTTP 404/);
  });

  it('uploaded files expire after uploadTtlMs (scaled)', async () => {
    const s = await start({ uploadTtlMs: 30_000 }); // 300 ms at ×100
    const a = await simCall(s.url, '/api/file-base64-upload', {
      body: { base64Data: Buffer.from('hello').toString('base64'), fileName: 'h.txt' },
    });
    expect(a.json.data.mimeType).toBe('text/plain');
    const url = a.json.data.downloadUrl as string;
    expect((await fetch(url)).status).toBe(200);
    await waitFor(async () => (await fetch(url)).status === 404, { timeoutMs: 5000, what: 'upload expiry' });
  });
});
