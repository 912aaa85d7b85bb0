/**
 * Where an image's before/after thumbnails live (made by worker/thumbnails.ts, served by server/batch-detail.ts):
 * under the output location as `<batchId>/.thumbs/<jobId>-<file>` (a storage key; on disk, that path under
 * OUTPUT_DIR). OUTPUT_NAME never renders a name starting with "." (src/storage/name-template.ts), so no result
 * can take a thumbnail's name.
 */
import { join } from 'node:path';

export const THUMB_FILES = ['in.webp', 'in-small.webp', 'out.webp', 'out-small.webp'] as const;
export type ThumbFile = (typeof THUMB_FILES)[number];

/** Folder of a batch's thumbnails: `OUTPUT_DIR/<batchId>/.thumbs`. */
export function thumbsDir(outputDir: string, batchId: string): string {
  return join(outputDir, batchId, '.thumbs');
}

/** Storage key of one thumbnail of an image: `<batchId>/.thumbs/<jobId>-<file>`. */
export function thumbKey(batchId: string, jobId: string, file: ThumbFile): string {
  return `${batchId}/.thumbs/${jobId}-${file}`;
}

/** Path of one thumbnail of an image on disk: `<thumbsDir>/<jobId>-<file>`. */
export function thumbPath(outputDir: string, batchId: string, jobId: string, file: ThumbFile): string {
  return join(thumbsDir(outputDir, batchId), `${jobId}-${file}`);
}
