/** The three uploads against a separate local "upload host": multipart content, JSON bodies, answers. */
import type { ServerResponse } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  KieBadResponseError,
  KieClient,
  KieNetworkError,
  KieTimeoutError,
  KieValidationError,
} from '../../src/kie/index.js';
import {
  closedPort,
  KEY,
  sendJson,
  startTestServer,
  type RecordedRequest,
  type TestServer,
  failure,
} from './kie-test-server.js';

let api: TestServer;
let uploads: TestServer;
let client: KieClient;
let dir: string;

const FILE = {
  fileName: 'a.png',
  filePath: 'kie-upscale-queue/a.png',
  downloadUrl: 'https://files.example/a.png',
  fileSize: 6,
  mimeType: 'image/png',
  uploadedAt: '2026-01-01T00:00:00.000Z',
};
const answer = (data: unknown = FILE) => ({
  success: true,
  code: 200,
  msg: 'File uploaded successfully',
  data,
});

beforeAll(async () => {
  api = await startTestServer((_req, res) => sendJson(res, 500, { code: 500, msg: 'wrong host' }));
  uploads = await startTestServer((_req, res) => sendJson(res, 200, answer()));
  client = new KieClient({ apiKey: KEY, baseUrl: api.url, uploadBaseUrl: uploads.url, timeoutMs: 2000 });
  dir = await mkdtemp(join(tmpdir(), 'kie-uploads-'));
});
afterAll(async () => {
  client.close();
  await Promise.all([api.close(), uploads.close(), rm(dir, { recursive: true, force: true })]);
});

async function form(req: RecordedRequest): Promise<FormData> {
  return new Response(req.body, {
    headers: { 'content-type': String(req.headers['content-type']) },
  }).formData();
}

describe('uploadFileStream', () => {
  it('streams a local file as multipart to the upload host, with a Content-Length', async () => {
    const path = join(dir, 'photo.png');
    const bytes = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 255]);
    await writeFile(path, bytes);
    uploads.handle((_req, res) => sendJson(res, 200, answer()));
    api.handle((_req, res) => sendJson(res, 500, {}));
    await expect(client.uploadFileStream(path)).resolves.toEqual(FILE);
    expect(api.requests).toHaveLength(0);
    expect(uploads.requests).toHaveLength(1);
    const req = uploads.requests[0]!;
    expect(req).toMatchObject({ method: 'POST', path: '/api/file-stream-upload' });
    expect(req.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(req.headers['user-agent']).toMatch(/^kie-upscale-queue\//);
    expect(Number(req.headers['content-length'])).toBe(req.body.length);
    const f = await form(req);
    expect(f.get('uploadPath')).toBe('kie-upscale-queue');
    expect(f.has('fileName')).toBe(false);
    const file = f.get('file') as File;
    expect(file.name).toBe('photo.png');
    expect(file.type).toBe('image/png');
    expect(Buffer.from(await file.arrayBuffer())).toEqual(bytes);
  });

  it('uploads a Buffer under the given name, path and fileName', async () => {
    uploads.handle((_req, res) => sendJson(res, 200, answer()));
    await client.uploadFileStream(
      { data: Buffer.from('hello'), fileName: 'orig "q".jpg' },
      { uploadPath: 'x/y', fileName: 'renamed.webp' },
    );
    const f = await form(uploads.requests[0]!);
    expect(f.get('uploadPath')).toBe('x/y');
    expect(f.get('fileName')).toBe('renamed.webp');
    const file = f.get('file') as File;
    expect(file.name).toBe('renamed.webp');
    expect(file.type).toBe('image/webp');
    expect(await file.text()).toBe('hello');
  });

  it('uploads a Readable chunked, without knowing its length', async () => {
    uploads.handle((_req, res) => sendJson(res, 200, answer()));
    const data = Readable.from([Buffer.from('abc'), Buffer.from('def')]);
    await client.uploadFileStream({ data, fileName: 'stream.jpeg' });
    const req = uploads.requests[0]!;
    expect(req.headers['transfer-encoding']).toBe('chunked');
    const file = (await form(req)).get('file') as File;
    expect(await file.text()).toBe('abcdef');
    expect(file.type).toBe('image/jpeg');
  });

  it('refuses a missing file, a directory and an over-size Buffer without a request', async () => {
    uploads.handle((_req, res) => sendJson(res, 200, answer()));
    expect(await failure(client.uploadFileStream(join(dir, 'missing.png')))).toMatchObject({
      name: 'KieValidationError',
      kieMessage: expect.stringMatching(/ENOENT/),
    });
    expect(await failure(client.uploadFileStream(dir))).toBeInstanceOf(KieValidationError);
    const small = new KieClient({
      apiKey: KEY,
      baseUrl: api.url,
      uploadBaseUrl: uploads.url,
      timeoutMs: 2000,
      maxUploadBytes: 10,
    });
    expect(
      await failure(small.uploadFileStream({ data: Buffer.alloc(11), fileName: 'x.png' })),
    ).toBeInstanceOf(KieValidationError);
    expect(uploads.requests).toHaveLength(0);
    const big = Readable.from([Buffer.alloc(8), Buffer.alloc(8)]);
    expect(await failure(small.uploadFileStream({ data: big, fileName: 'x.png' }))).toBeInstanceOf(
      KieValidationError,
    );
    small.close();
  });

  it('a refused upload of a local file is a KieNetworkError that was not sent', async () => {
    const path = join(dir, 'refused.png');
    await writeFile(path, Buffer.alloc(1024));
    const refused = new KieClient({
      apiKey: KEY,
      baseUrl: api.url,
      uploadBaseUrl: `http://127.0.0.1:${await closedPort()}`,
      timeoutMs: 2000,
    });
    const e = await failure(refused.uploadFileStream(path));
    refused.close();
    expect(e).toBeInstanceOf(KieNetworkError);
    expect((e as KieNetworkError).maybeSent).toBe(false);
  });
});

describe('uploadBase64 and uploadFromUrl', () => {
  it('sends a Buffer as base64Data with the default uploadPath', async () => {
    uploads.handle((_req, res) => sendJson(res, 200, answer()));
    await client.uploadBase64(Buffer.from('png-bytes'));
    const req = uploads.requests[0]!;
    expect(req).toMatchObject({ method: 'POST', path: '/api/file-base64-upload' });
    expect(req.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(req.json()).toEqual({
      base64Data: Buffer.from('png-bytes').toString('base64'),
      uploadPath: 'kie-upscale-queue',
    });
  });

  it('makes a data URL with mimeType, passes data URLs through, strips whitespace', async () => {
    uploads.handle((_req, res) => sendJson(res, 200, answer()));
    await client.uploadBase64('aGVs\nbG8=', { mimeType: 'image/png', fileName: 'h.png', uploadPath: 'p' });
    expect(uploads.requests[0]!.json()).toEqual({
      base64Data: 'data:image/png;base64,aGVsbG8=',
      uploadPath: 'p',
      fileName: 'h.png',
    });
    uploads.handle((_req, res) => sendJson(res, 200, answer()));
    await client.uploadBase64('data:image/webp;base64,aGVsbG8=', { mimeType: 'image/png' });
    expect(uploads.requests[0]!.json().base64Data).toBe('data:image/webp;base64,aGVsbG8=');
  });

  it('refuses empty data, text that is not base64 and a data URL that is not base64', async () => {
    for (const bad of ['', 'not base64!', 'data:text/plain,hello']) {
      expect(await failure(client.uploadBase64(bad))).toBeInstanceOf(KieValidationError);
    }
  });

  it('uploadFromUrl sends { fileUrl, uploadPath, fileName? } and refuses a non-http URL', async () => {
    uploads.handle((_req, res) => sendJson(res, 200, answer()));
    await client.uploadFromUrl('https://img.example/a.png', { fileName: 'a.png' });
    const req = uploads.requests[0]!;
    expect(req).toMatchObject({ method: 'POST', path: '/api/file-url-upload' });
    expect(req.json()).toEqual({
      fileUrl: 'https://img.example/a.png',
      uploadPath: 'kie-upscale-queue',
      fileName: 'a.png',
    });
    expect(await failure(client.uploadFromUrl('file:///etc/passwd'))).toBeInstanceOf(KieValidationError);
  });
});

describe('upload answers', () => {
  it('normalises optional fields and a numeric uploadedAt', async () => {
    uploads.handle((_req, res) => sendJson(res, 200, answer({ downloadUrl: 'https://f/x', uploadedAt: 0 })));
    await expect(client.uploadFromUrl('https://img.example/a.png')).resolves.toEqual({
      fileName: '',
      filePath: '',
      downloadUrl: 'https://f/x',
      fileSize: null,
      mimeType: null,
      uploadedAt: '1970-01-01T00:00:00.000Z',
    });
  });

  it('success: false, a missing downloadUrl or data of the wrong type are bad responses; codes map as usual', async () => {
    uploads.handle((_req, res) => sendJson(res, 200, { success: false, code: 200, msg: 'nope', data: FILE }));
    expect(await failure(client.uploadFromUrl('https://i/a.png'))).toBeInstanceOf(KieBadResponseError);
    uploads.handle((_req, res) => sendJson(res, 200, answer({ fileName: 'a.png' })));
    expect((await failure(client.uploadFromUrl('https://i/a.png'))).kieMessage).toMatch(/downloadUrl/);
    uploads.handle((_req, res) => sendJson(res, 200, answer('https://f/x')));
    expect(await failure(client.uploadFromUrl('https://i/a.png'))).toBeInstanceOf(KieBadResponseError);
    uploads.handle((_req, res) => sendJson(res, 200, { success: false, code: 401, msg: 'bad key' }));
    expect(await failure(client.uploadBase64(Buffer.from('x')))).toMatchObject({
      name: 'KieAuthError',
      endpoint: 'POST /api/file-base64-upload',
    });
  });

  it('uploads get 5x the API timeout by default', async () => {
    const quick = new KieClient({
      apiKey: KEY,
      baseUrl: uploads.url,
      uploadBaseUrl: uploads.url,
      timeoutMs: 150,
    });
    const late = (_req: RecordedRequest, res: ServerResponse) =>
      void setTimeout(() => sendJson(res, 200, answer()), 400);
    uploads.handle(late);
    await expect(quick.uploadFromUrl('https://i/a.png')).resolves.toMatchObject({
      downloadUrl: FILE.downloadUrl,
    });
    expect(await failure(quick.getCredits())).toBeInstanceOf(KieTimeoutError);
    quick.close();
  });
});
