/**
 * The one place a batch's own files are written (the finalizer's results.jsonl and summary.json), so where they go
 * is decided in one function: `<batchId>/<name>` in the output storage (OUTPUT_URL / OUTPUT_DIR, src/storage),
 * beside the batch's results. Each is stored atomically (file: a temp file in the same folder renamed when complete;
 * S3: a single PUT or a multipart upload shown only once completed), so a reader never sees half a file and a crash
 * leaves the previous version whole. The body is streamed, never held whole in memory.
 */
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { FileStorage, type Storage, type StoredObject } from '../storage/index.js';

/** File names a batch file may have: letters, digits, `.`, `_`, `-` (no path separators). */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

const CONTENT_TYPES: Readonly<Record<string, string>> = { '.json': 'application/json', '.jsonl': 'application/x-ndjson' };

/** The storage a target names: a Storage as it is, a folder path as a file storage over it. */
function storageOf(target: Storage | string): Storage {
  return typeof target === 'string' ? new FileStorage(target) : target;
}

/**
 * Writes `body` as `name` in the batch's folder of `target` (a Storage, or an output folder path) atomically and
 * returns where it went: the local path for the file backend, else its URL (`s3://bucket/prefix/<batchId>/<name>`).
 * Throws a `RangeError` for a name with path separators, and `StorageError` / `StorageAuthError` when it cannot be
 * written (nothing is left under the name).
 */
export async function writeBatchFile(target: Storage | string, batchId: string, name: string, body: Readable | string): Promise<string> {
  if (!NAME.test(name)) throw new RangeError(`batch file name "${name}" must be a plain file name`);
  const storage = storageOf(target);
  const ext = name.slice(name.lastIndexOf('.'));
  const stored: StoredObject = await storage.put(`${batchId}/${name}`, typeof body === 'string' ? Readable.from([body]) : body, {
    contentType: CONTENT_TYPES[ext] ?? 'application/octet-stream',
  });
  return stored.path ?? stored.url;
}

/**
 * Where `writeBatchFile` writes a batch's files: the local folder for the file backend (a path), else the folder's
 * URL without credentials (`s3://bucket/prefix/<batchId>`).
 */
export function batchFolder(target: Storage | string, batchId: string): string {
  if (typeof target === 'string') return join(target, batchId);
  if (target instanceof FileStorage) return join(target.dir, batchId);
  return target.urlOf(batchId);
}
