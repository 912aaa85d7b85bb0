/**
 * The upload host's three endpoints (KIE_API.md, "Files"), free of charge and behind the same key:
 * multipart stream, base64 (plain or data URL) and URL. Each stores the file, served at
 * `/files/<id>/<fileName>` until the upload expiry, and answers
 * `{ success, code, msg, data: { fileName, filePath, downloadUrl, fileSize, mimeType, uploadedAt } }`.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { SimContext } from './context.js';
import { fetchLimited, inspectImage } from './fetch-input.js';
import { answerer } from './gate.js';
import { boundaryOf, parseMultipart } from './multipart.js';

/** Largest file the upload endpoints store. */
export const MAX_UPLOAD_BYTES = 100 * 1024 * 1024;

const EXT_MIME: Record<string, string> = {
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  gif: 'image/gif',
  txt: 'text/plain',
  json: 'application/json',
};
const MIME_EXT: Record<string, string> = {
  'image/jpeg': 'jpg',
  'image/png': 'png',
  'image/webp': 'webp',
  'image/gif': 'gif',
};

function cleanName(name: unknown): string | undefined {
  if (typeof name !== 'string') return undefined;
  const base = name.split(/[\\/]/).pop()?.trim() ?? '';
  const safe = base.replace(/[^\w.\- ()]/g, '_');
  return safe === '' || safe === '.' || safe === '..' ? undefined : safe;
}

function cleanPath(path: unknown): string {
  if (typeof path !== 'string') return '';
  return path
    .split('/')
    .map((s) => s.trim().replace(/[^\w.-]/g, '_'))
    .filter((s) => s !== '' && s !== '.' && s !== '..')
    .join('/');
}

async function mimeOf(data: Buffer, fileName: string | undefined, hint: string | undefined): Promise<string> {
  const facts = await inspectImage(data);
  if (facts) return facts.format === 'jpeg' ? 'image/jpeg' : `image/${facts.format}`;
  const ext = fileName?.split('.').pop()?.toLowerCase() ?? '';
  if (Object.hasOwn(EXT_MIME, ext)) return EXT_MIME[ext] as string;
  if (hint && /^[\w.+-]+\/[\w.+-]+/.test(hint)) return hint.split(';')[0] as string;
  return 'application/octet-stream';
}

export function registerUploadRoutes(app: FastifyInstance, ctx: SimContext): void {
  const answer = answerer(ctx, true);

  app.addContentTypeParser(
    'multipart/form-data',
    { parseAs: 'buffer', bodyLimit: MAX_UPLOAD_BYTES },
    (_req, body, done) => done(null, body),
  );

  const store = async (data: Buffer, fileName: unknown, uploadPath: unknown, hint?: string) => {
    const mimeType = await mimeOf(data, cleanName(fileName), hint);
    const name = cleanName(fileName) ?? `${randomBytes(8).toString('hex')}.${MIME_EXT[mimeType] ?? 'bin'}`;
    const id = randomBytes(8).toString('hex');
    await ctx.files.put(`/files/${id}/${name}`, data, mimeType, ctx.opts.uploadTtlMs);
    ctx.stats.counters.uploads++;
    const dir = cleanPath(uploadPath);
    return {
      fileName: name,
      filePath: dir === '' ? name : `${dir}/${name}`,
      downloadUrl: `${ctx.baseUrl()}/files/${id}/${encodeURIComponent(name)}`,
      fileSize: data.length,
      mimeType,
      uploadedAt: new Date().toISOString(),
    };
  };

  app.post('/api/file-stream-upload', async (request, reply) => {
    const boundary = boundaryOf(request.headers['content-type']);
    if (!boundary || !Buffer.isBuffer(request.body))
      return answer(reply, 400, 'the body must be multipart/form-data with a file field');
    let parts;
    try {
      parts = parseMultipart(request.body, boundary);
    } catch (e) {
      return answer(reply, 400, `malformed multipart body: ${(e as Error).message}`);
    }
    const file =
      parts.find((p) => p.name === 'file' && p.filename !== undefined) ??
      parts.find((p) => p.name === 'file');
    if (!file) return answer(reply, 400, 'file is required');
    const field = (name: string) =>
      parts.find((p) => p.name === name && p.filename === undefined)?.data.toString('utf8');
    const data = await store(
      Buffer.from(file.data),
      field('fileName') ?? file.filename,
      field('uploadPath'),
      file.contentType,
    );
    return answer(reply, 200, 'File uploaded successfully', data);
  });

  app.post('/api/file-base64-upload', async (request, reply) => {
    const body = (request.body ?? {}) as { base64Data?: unknown; fileName?: unknown; uploadPath?: unknown };
    if (typeof body.base64Data !== 'string' || body.base64Data.trim() === '')
      return answer(reply, 400, 'base64Data is required');
    const m = /^data:([^;,]*)(;base64)?,(.*)$/s.exec(body.base64Data.trim());
    const payload = (m ? (m[3] ?? '') : body.base64Data).replace(/\s+/g, '');
    if (m && !m[2]) return answer(reply, 400, 'base64Data is a data URL without ;base64');
    if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(payload))
      return answer(reply, 400, 'base64Data is not valid base64');
    const data = Buffer.from(payload, 'base64');
    if (data.length === 0) return answer(reply, 400, 'base64Data decodes to an empty file');
    return answer(
      reply,
      200,
      'File uploaded successfully',
      await store(data, body.fileName, body.uploadPath, m?.[1]),
    );
  });

  app.post('/api/file-url-upload', async (request, reply) => {
    const body = (request.body ?? {}) as { fileUrl?: unknown; fileName?: unknown; uploadPath?: unknown };
    if (typeof body.fileUrl !== 'string' || body.fileUrl.trim() === '')
      return answer(reply, 400, 'fileUrl is required');
    const fetched = await fetchLimited(body.fileUrl.trim(), {
      timeoutMs: ctx.opts.fetchTimeoutMs,
      maxBytes: MAX_UPLOAD_BYTES,
      signal: ctx.stopSignal,
    });
    if (!fetched.ok) return answer(reply, 400, `cannot download ${body.fileUrl}: ${fetched.reason}`);
    const fromUrl = new URL(body.fileUrl.trim()).pathname.split('/').pop();
    const data = await store(
      fetched.data,
      body.fileName ?? fromUrl,
      body.uploadPath,
      fetched.contentType ?? undefined,
    );
    return answer(reply, 200, 'File uploaded successfully', data);
  });
}
