/**
 * The files the simulator serves, kept in a temp directory: task results (`/results/<taskId>/0.<ext>`),
 * uploads (`/files/<id>/<name>`) and download links (`/dl/<token>`). Each has an expiry; after it the path
 * answers 404, as kie.ai's expired result URLs do.
 */
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

/** Registers `GET /results/*`, `/files/*` and `/dl/*` (public, like kie.ai's file hosts: no key). */
export function registerFileRoutes(app: FastifyInstance, store: FileStore): void {
  const serve = async (url: string, reply: FastifyReply) => {
    const entry = store.get(pathOf(url));
    if (!entry) return reply.code(404).type('text/plain').send('Not Found\n');
    return reply.type(entry.mimeType).header('content-length', entry.size).send(createReadStream(entry.file));
  };
  app.get('/results/*', (request, reply) => serve(request.url, reply));
  app.get('/files/*', (request, reply) => serve(request.url, reply));
  app.get('/dl/*', (request, reply) => serve(request.url, reply));
}
