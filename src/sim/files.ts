/**
 * The files the simulator serves, kept in a temp directory: task results (`/results/<taskId>/0.<ext>`),
 * uploads (`/files/<id>/<name>`) and download links (`/dl/<token>`). Each has an expiry; after it the path
 * answers 404, as kie.ai's expired result URLs do.
 */
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { FastifyInstance, FastifyReply } from 'fastify';

export interface StoredFile {
  /** Absolute path on disk. */
  file: string;
  mimeType: string;
  size: number;
  /** Wall-clock expiry, Unix ms. */
  expiresAt: number;
}

export class FileStore {
  private entries = new Map<string, StoredFile>();
  private counter = 0;

  private constructor(readonly dir: string) {}

  static async create(): Promise<FileStore> {
    const dir = await mkdtemp(join(tmpdir(), 'kie-sim-'));
    await mkdir(join(dir, 'store'));
    await mkdir(join(dir, 'inputs'));
    return new FileStore(dir);
  }

  /** Writes `data` and serves it at `urlPath` (decoded form, leading slash) until `ttlMs` from now. */
  async put(urlPath: string, data: Buffer, mimeType: string, ttlMs: number): Promise<StoredFile> {
    const file = join(this.dir, 'store', String(++this.counter));
    await writeFile(file, data);
    const entry = { file, mimeType, size: data.length, expiresAt: Date.now() + ttlMs };
    this.entries.set(urlPath, entry);
    return entry;
  }

  /**
   * Writes `data` to a file that is served at no path and never expires: the light mode's shared outputs, which
   * `alias` serves under each task's result path.
   */
  async keep(data: Buffer, mimeType: string): Promise<StoredFile> {
    const file = join(this.dir, 'store', String(++this.counter));
    await writeFile(file, data);
    return { file, mimeType, size: data.length, expiresAt: Infinity };
  }

  /** Serves an existing entry at another path too (download links), with its own expiry. */
  alias(urlPath: string, entry: StoredFile, ttlMs: number): void {
    this.entries.set(urlPath, { ...entry, expiresAt: Math.min(entry.expiresAt, Date.now() + ttlMs) });
  }

  /** The live entry at `urlPath`, or undefined (never stored, or expired). */
  get(urlPath: string): StoredFile | undefined {
    const e = this.entries.get(urlPath);
    if (!e) return undefined;
    if (Date.now() >= e.expiresAt) {
      this.entries.delete(urlPath);
      return undefined;
    }
    return e;
  }

  /** A scratch path for a task's input bytes. */
  inputPath(taskId: string): string {
    return join(this.dir, 'inputs', taskId);
  }

  async removeQuietly(file: string): Promise<void> {
    await unlink(file).catch(() => undefined);
  }

  async destroy(): Promise<void> {
    this.entries.clear();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** The decoded path of a request URL, without its query. */
export function pathOf(rawUrl: string): string {
  const path = rawUrl.split('?')[0] ?? '';
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

/** How a result download is delivered, for the `truncatedResultRate` and `gzipResultRate` faults. */
export type Delivery = 'normal' | 'truncated' | 'gzip';

/**
 * Sends half of the file over HTTP/1.0 with no Content-Length and closes the connection: a client that reads to
 * the close sees an ordinary end.
 */
async function sendTruncated(reply: FastifyReply, entry: StoredFile): Promise<void> {
  const data = await readFile(entry.file);
  reply.hijack();
  const socket = reply.raw.socket;
  if (!socket) return;
  socket.write(`HTTP/1.0 200 OK\r\nContent-Type: ${entry.mimeType}\r\nConnection: close\r\n\r\n`);
  socket.end(data.subarray(0, Math.floor(data.length / 2)));
}

/**
 * Registers `GET /results/*`, `/files/*` and `/dl/*` (public, like kie.ai's file hosts: no key). `delivery` picks
 * how each result download (`/results`, `/dl`) is sent; uploads are always sent normally.
 */
export function registerFileRoutes(app: FastifyInstance, store: FileStore, delivery: () => Delivery = () => 'normal'): void {
  const serve = async (url: string, reply: FastifyReply, result: boolean) => {
    const entry = store.get(pathOf(url));
    if (!entry) return reply.code(404).type('text/plain').send('Not Found\n');
    const how = result ? delivery() : 'normal';
    if (how === 'truncated') return sendTruncated(reply, entry);
    if (how === 'gzip') {
      const zipped = gzipSync(await readFile(entry.file));
      return reply.type(entry.mimeType).header('content-encoding', 'gzip').header('content-length', zipped.length).send(zipped);
    }
    return reply.type(entry.mimeType).header('content-length', entry.size).send(createReadStream(entry.file));
  };
  app.get('/results/*', (request, reply) => serve(request.url, reply, true));
  app.get('/files/*', (request, reply) => serve(request.url, reply, false));
  app.get('/dl/*', (request, reply) => serve(request.url, reply, true));
}
