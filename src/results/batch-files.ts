/**
 * The one place a batch's own files are written (the finalizer's results.jsonl and summary.json), so where they go
 * can be changed in one function. Today: `OUTPUT_DIR/<batchId>/<name>`, written to a temp file in the same folder
 * and renamed when complete, so a reader never sees half a file and a crash leaves the previous version whole.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** File names a batch file may have: letters, digits, `.`, `_`, `-` (no path separators). */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * Writes `body` as `name` in the batch's folder under `outputDir` atomically and returns its path.
 * Throws a `RangeError` for a name with path separators, and the file system's error when the folder cannot be
 * written (the temp file is removed).
 */
export async function writeBatchFile(outputDir: string, batchId: string, name: string, body: Readable | string): Promise<string> {
  if (!NAME.test(name)) throw new RangeError(`batch file name "${name}" must be a plain file name`);
  const dir = join(outputDir, batchId);
  await mkdir(dir, { recursive: true });
  const path = join(dir, name);
  const temp = join(dir, `.${name}.${randomBytes(4).toString('hex')}.part`);
  try {
    await pipeline(typeof body === 'string' ? Readable.from([body]) : body, createWriteStream(temp, { flags: 'wx' }));
    await rename(temp, path);
  } catch (e) {
    await rm(temp, { force: true });
    throw e;
  }
  return path;
}

/** The folder `writeBatchFile` writes a batch's files into. */
export function batchFolder(outputDir: string, batchId: string): string {
  return join(outputDir, batchId);
}
