/**
 * The download lane's temp files: `OUTPUT_DIR/<batchId>/.<stem>.<8 hex>.part`, renamed to the result's name when
 * complete and checked, removed when the download fails or is aborted. A process killed mid-download (SIGKILL,
 * power cut) cannot remove its own, so the download lane removes stale ones when it starts.
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

/**
 * Removes the temp files under `outputDir/<batch>/` not written for `olderThanMs` (a live download writes its
 * file continuously and ends within its whole-exchange timeout, so a temp file idle for longer than that belongs
 * to a download that died). Other workers sharing OUTPUT_DIR keep their live temp files. Never throws.
 * @returns the number of files removed and their bytes.
 */
export async function removeStaleParts(outputDir: string, olderThanMs: number, log?: Logger, now = Date.now()): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  const batches = await readdir(outputDir, { withFileTypes: true }).catch(() => []);
  for (const batch of batches) {
    if (!batch.isDirectory()) continue;
    const dir = join(outputDir, batch.name);
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names) {
      if (!isPartName(name)) continue;
      const path = join(dir, name);
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
  }
  if (files > 0) log?.info({ outputDir, files, bytes }, 'removed temp files of interrupted downloads');
  return { files, bytes };
}
