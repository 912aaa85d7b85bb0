/**
 * The download lane's temp files: `<staging folder>/.<stem>.<8 hex>.part` (the storage's `stagingDir()`:
 * `OUTPUT_DIR/.staging/` on disk, the OS temp folder for S3), stored under the result's name once complete and
 * verified, removed when the download ends whatever its outcome. The file storage writes its own temp files the
 * same way (`.<name>.<8 hex>.part` beside the target). A process killed mid-download (SIGKILL, power cut) cannot
 * remove its own, so the download lane removes stale ones when it starts.
 */
import { randomBytes } from 'node:crypto';
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log.js';

const PART = /^\..+\.[0-9a-f]{8}\.part$/;

/** A fresh temp file name in `dir` for the result named `stem`. */
export function partPath(dir: string, stem: string): string {
  return join(dir, `.${stem}.${randomBytes(4).toString('hex')}.part`);
}

/** True for a name {@link partPath} makes. */
export function isPartName(name: string): boolean {
  return PART.test(name);
}

/** Folder levels under the root that {@link removeStaleParts} looks into (OUTPUT_NAME's folders included). */
const MAX_DEPTH = 8;

/**
 * Removes the temp files under `root` and its folders (up to {@link MAX_DEPTH} levels) not written for
 * `olderThanMs`: the download lane's staged results and the file storage's `.<name>.<hex>.part` files (a live
 * download writes its file continuously and ends within its whole-exchange timeout, so a temp file idle for longer
 * than that belongs to a download that died). `root` is OUTPUT_DIR for the file storage (its `.staging/` folder, the
 * batch folders and OUTPUT_NAME's folders), the staging folder for S3. Other workers sharing it keep their live temp
 * files. Never throws.
 * @returns the number of files removed and their bytes.
 */
export async function removeStaleParts(root: string, olderThanMs: number, log?: Logger, now = Date.now()): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  const walk = async (dir: string, depth: number): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (depth < MAX_DEPTH) await walk(path, depth + 1);
        continue;
      }
      if (!entry.isFile() || !isPartName(entry.name)) continue;
      const st = await stat(path).catch(() => null);
      if (!st?.isFile() || now - st.mtimeMs < olderThanMs) continue;
      try {
        await rm(path, { force: true });
        files++;
        bytes += st.size;
      } catch (err) {
        log?.warn({ path, err }, 'could not remove a stale download temp file');
      }
    }
  };
  await walk(root, 0);
  if (files > 0) log?.info({ root, files, bytes }, 'removed temp files of interrupted downloads');
  return { files, bytes };
}
