/**
 * Bodies and answers of kie.ai's three file-upload endpoints (upload host, same Bearer key):
 * a streamed multipart body for `file-stream-upload` (no dependency, the file is never read into memory whole),
 * the JSON bodies of `file-base64-upload` and `file-url-upload`, and the parser of their common answer.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { Readable } from 'node:stream';
import { type Envelope, InputError, isRecord, ShapeError } from './envelope.js';
import { numberOf } from './task-info.js';
import type { Base64UploadOptions, UploadedFile, UploadOptions, UploadSource } from './types.js';
import { httpUrlProblem } from '../url-problem.js';

const MIME_BY_EXT: Readonly<Record<string, string>> = {
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.bmp': 'image/bmp',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
};

/** The content type a file name suggests; `application/octet-stream` when unknown. */
export function mimeTypeFor(fileName: string): string {
  return MIME_BY_EXT[extname(fileName).toLowerCase()] ?? 'application/octet-stream';
}

/** Quotes a value for a `Content-Disposition` parameter as browsers do (", CR and LF percent-encoded). */
function quoted(value: string): string {
  return `"${value.replace(/"/g, '%22').replace(/\r/g, '%0D').replace(/\n/g, '%0A')}"`;
}

export interface MultipartBody {
  body: Readable;
  contentType: string;
  /** Exact byte length when the file's size is known up front (path or Buffer); null for a stream. */
  contentLength: number | null;
}

/** The optional text fields of every upload: `uploadPath` (defaulted), `fileName` only when given. */
export function uploadFields(opts: UploadOptions, defaultPath: string): Record<string, string> {
  const fields: Record<string, string> = { uploadPath: opts.uploadPath ?? defaultPath };
  if (opts.fileName !== undefined) fields.fileName = opts.fileName;
  return fields;
}

/**
 * Builds `multipart/form-data` with `fields` first and then the `file` part. A local path is checked and
 * streamed; `maxBytes` is enforced up front when the size is known (the transport enforces it for streams).
 */
export async function multipartBody(
  source: UploadSource,
  fields: Record<string, string>,
  maxBytes: number,
): Promise<MultipartBody> {
  let partName: string;
  /** A path is opened only when the body is read, so a request that never starts leaks no descriptor. */
  let content: Buffer | Readable | { path: string };
  let size: number | null;
  if (typeof source === 'string') {
    const info = await stat(source).catch((e: NodeJS.ErrnoException) => {
      throw new InputError(`cannot read ${source}: ${e.code ?? e.message}`);
    });
    if (!info.isFile()) throw new InputError(`${source} is not a file`);
    partName = basename(source);
    size = info.size;
    if (size > maxBytes)
      throw new InputError(`${source} is ${size} bytes, over the ${maxBytes}-byte upload limit`);
    content = { path: source };
  } else {
    if (source.fileName.trim() === '') throw new InputError('fileName is empty');
    partName = source.fileName;
    content = source.data;
    size = Buffer.isBuffer(content) ? content.length : null;
  }
  if (size !== null && size > maxBytes)
    throw new InputError(`file is ${size} bytes, over the ${maxBytes}-byte upload limit`);
  const fileName = fields.fileName ?? partName;
  const boundary = `----kie-upscale-queue-${randomBytes(12).toString('hex')}`;
  const head = Object.entries(fields)
    .map(
      ([name, value]) =>
        `--${boundary}\r\nContent-Disposition: form-data; name=${quoted(name)}\r\n\r\n${value}\r\n`,
    )
    .join('');
  const preamble = Buffer.from(
    `${head}--${boundary}\r\nContent-Disposition: form-data; name="file"; filename=${quoted(fileName)}\r\n` +
      `Content-Type: ${mimeTypeFor(fileName)}\r\n\r\n`,
  );
  const epilogue = Buffer.from(`\r\n--${boundary}--\r\n`);
  async function* chunks(): AsyncGenerator<Buffer> {
    yield preamble;
    if (Buffer.isBuffer(content)) yield content;
    else {
      // for-await destroys the stream when the body is abandoned (request failed, body destroyed).
      const stream = content instanceof Readable ? content : createReadStream(content.path);
      for await (const chunk of stream) yield Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
    }
    yield epilogue;
  }
  return {
    body: Readable.from(chunks(), { objectMode: false }),
    contentType: `multipart/form-data; boundary=${boundary}`,
    contentLength: size === null ? null : preamble.length + size + epilogue.length,
  };
}

/** The JSON body of `file-base64-upload`: plain base64 or a data URL; a Buffer is encoded here. */
export function base64Body(
  data: Buffer | string,
  opts: Base64UploadOptions,
  defaultPath: string,
): Record<string, string> {
  let base64Data: string;
  if (Buffer.isBuffer(data)) {
    if (data.length === 0) throw new InputError('data is empty');
    base64Data = data.toString('base64');
  } else {
    base64Data = data.trim();
    if (base64Data === '') throw new InputError('data is empty');
    if (!base64Data.startsWith('data:')) {
      base64Data = base64Data.replace(/\s+/g, '');
      if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(base64Data))
        throw new InputError('data is neither base64 nor a data URL');
    } else if (!/^data:[^,]*;base64,/.test(base64Data)) {
      throw new InputError('data URL is not base64-encoded (expected data:<type>;base64,...)');
    }
  }
  if (!base64Data.startsWith('data:') && opts.mimeType !== undefined) {
    base64Data = `data:${opts.mimeType};base64,${base64Data}`;
  }
  return { base64Data, ...uploadFields(opts, defaultPath) };
}

/** The JSON body of `file-url-upload`: kie's file host fetches `fileUrl` itself (30 s limit). */
export function urlBody(fileUrl: string, opts: UploadOptions, defaultPath: string): Record<string, string> {
  const problem = httpUrlProblem(fileUrl);
  if (problem !== null) throw new InputError(`fileUrl ${JSON.stringify(fileUrl)} cannot be used: ${problem}`);
  return { fileUrl, ...uploadFields(opts, defaultPath) };
}

function optionalString(value: unknown): string | null {
  return typeof value === 'string' && value.trim() !== '' ? value : null;
}

/** The common answer `{ success, code, msg, data: { fileName, filePath, downloadUrl, ... } }` of every upload. */
export function parseUploaded(envelope: Envelope): UploadedFile {
  if (envelope.body.success === false)
    throw new ShapeError(`upload answered success: false (${envelope.message || 'no message'})`);
  const data = envelope.data;
  if (!isRecord(data)) throw new ShapeError('data is not an object describing the uploaded file');
  const downloadUrl = optionalString(data.downloadUrl);
  if (downloadUrl === null) throw new ShapeError('data has no downloadUrl');
  const uploadedAt =
    typeof data.uploadedAt === 'number' && Math.abs(data.uploadedAt) <= 8.64e15
      ? new Date(data.uploadedAt).toISOString()
      : optionalString(data.uploadedAt);
  return {
    fileName: optionalString(data.fileName) ?? '',
    filePath: optionalString(data.filePath) ?? '',
    downloadUrl,
    fileSize: numberOf(data.fileSize),
    mimeType: optionalString(data.mimeType),
    uploadedAt,
  };
}
