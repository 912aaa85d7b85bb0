/**
 * The file backend: objects are files under one folder (OUTPUT_DIR / OUTPUT_URL=file:///folder). A key's `/` make
 * sub-folders; a key can never leave the folder. Writes go to a temp file beside the target (`.<name>.<random>.part`)
 * and are renamed into place once complete and checked against the given sha256, so a reader never sees half a file.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, link, mkdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { StorageAuthError, StorageError, StorageUnavailableError } from './errors.js';
import type { ObjectBody, PutOptions, PutSource, Storage, StoredObject } from './types.js';

/** Checks a key's form (relative, `/`-separated, no empty, `.` or `..` part); throws `StorageError`. */
export function checkKey(key: string): string[] {
  const segments = key.split('/');
  // eslint-disable-next-line no-control-regex -- refusing control characters is the point
  if (key === '' || key.includes('\\') || /[\u0000-\u001f]/.test(key) || segments.some((s) => s === '' || s === '.' || s === '..')) {
    throw new StorageError(`"${key}" is not a valid object name (empty, ".", ".." or "\\" parts)`, false);
  }
  return segments;
}

/** Hex sha256 and size of a file, streamed. */
export async function hashFile(path: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), size };
}

/** errno codes that say the disk or mount is unusable for now (any image would fail alike). */
const STORE_DOWN = ['ENOSPC', 'EDQUOT', 'EIO', 'ESTALE', 'ENOTCONN', 'EHOSTDOWN', 'ETIMEDOUT', 'EBUSY', 'ENODEV', 'ENXIO'];

function fsError(e: unknown, what: string): StorageError {
  const err = e as NodeJS.ErrnoException;
  const code = err.code ?? '';
  const message = `${what}: ${code || err.message}${code ? ` (${err.message.split(',')[0]})` : ''}`;
  // Nobody can write there until someone changes the folder's permissions or mounts it writable.
  if (['EACCES', 'EPERM', 'EROFS'].includes(code)) return new StorageAuthError(message);
  // The disk or mount, not the image: full, failing, or a network mount gone away.
  if (STORE_DOWN.includes(code)) return new StorageUnavailableError(message);
  return new StorageError(message, true);
}

export class FileStorage implements Storage {
  readonly kind = 'file' as const;
  readonly url: string;

  constructor(readonly dir: string) {
    this.dir = resolve(dir);
    this.url = pathToFileURL(this.dir).href;
  }

  /** The file of `key`, inside the folder. */
  pathOf(key: string): string {
    const path = resolve(this.dir, ...checkKey(key));
    if (!path.startsWith(this.dir + sep)) throw new StorageError(`"${key}" would be outside ${this.url}`, false);
    return path;
  }

  urlOf(key: string): string {
    return pathToFileURL(this.pathOf(key)).href;
  }

  keyOf(url: string): string | null {
    if (!url.startsWith(this.url.replace(/\/?$/, '/'))) return null;
    try {
      const key = relative(this.dir, fileURLToPath(url)).split(sep).join('/');
      return this.urlOf(key) === url ? key : null;
    } catch {
      return null;
    }
  }

  async head(key: string): Promise<StoredObject | null> {
    const path = this.pathOf(key);
    const st = await stat(path).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return null;
      throw fsError(e, `cannot read ${pathToFileURL(path).href}`);
    });
    if (st === null || !st.isFile()) return null;
    const { sha256, size } = await hashFile(path).catch((e: unknown) => {
      throw fsError(e, `cannot read ${pathToFileURL(path).href}`);
    });
    return { key, url: pathToFileURL(path).href, path, size, sha256 };
  }

  async exists(key: string): Promise<boolean> {
    const path = this.pathOf(key);
    const st = await stat(path).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return null;
      throw fsError(e, `cannot read ${pathToFileURL(path).href}`);
    });
    return st !== null && st.isFile();
  }

  async get(key: string): Promise<ObjectBody | null> {
    const path = this.pathOf(key);
    const st = await stat(path).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return null;
      throw fsError(e, `cannot read ${pathToFileURL(path).href}`);
    });
    if (st === null || !st.isFile()) return null;
    return { body: createReadStream(path), size: st.size };
  }

  async put(key: string, source: PutSource, options: PutOptions = {}): Promise<StoredObject> {
    const path = this.pathOf(key);
    const url = pathToFileURL(path).href;
    const temp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.part`);
    const { signal } = options;
    try {
      signal?.throwIfAborted();
      await mkdir(dirname(path), { recursive: true });
      let written: { sha256: string; size: number };
      if ('file' in source) {
        try {
          // Same file system (the staging folder is inside this one): a second name for the same bytes, no copy.
          await link(source.file, temp);
        } catch (e) {
          if (!['EXDEV', 'EPERM', 'ENOTSUP', 'EMLINK'].includes((e as NodeJS.ErrnoException).code ?? '')) throw e;
          await copyFile(source.file, temp);
        }
        written = await hashFile(temp);
      } else {
        written = await writeStream(source, temp, signal);
      }
      signal?.throwIfAborted();
      if (options.sha256 !== undefined && written.sha256 !== options.sha256) {
        throw new StorageError(`${url}: the bytes written have sha256 ${written.sha256}, expected ${options.sha256}`, true);
      }
      await rename(temp, path);
      return { key, url, path, size: written.size, sha256: written.sha256 };
    } catch (e) {
      await rm(temp, { force: true });
      if (signal?.aborted) throw signal.reason;
      throw e instanceof StorageError ? e : fsError(e, `cannot write ${url}`);
    }
  }

  async stagingDir(): Promise<string> {
    const dir = join(this.dir, '.staging');
    await mkdir(dir, { recursive: true }).catch((e: unknown) => {
      throw fsError(e, `cannot create ${pathToFileURL(dir).href}`);
    });
    return dir;
  }

  close(): void {}
}

async function writeStream(source: Readable, temp: string, signal: AbortSignal | undefined): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  await pipeline(
    source,
    new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        size += chunk.length;
        done(null, chunk);
      },
    }),
    createWriteStream(temp, { flags: 'wx' }),
    signal ? { signal } : {},
  );
  return { sha256: hash.digest('hex'), size };
}
