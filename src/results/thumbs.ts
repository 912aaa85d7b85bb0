/** Where an image's before/after thumbnails live (made by worker/thumbnails.ts, served by server/batch-detail.ts). */
import { join } from 'node:path';

export const THUMB_FILES = ['in.webp', 'in-small.webp', 'out.webp', 'out-small.webp'] as const;
export type ThumbFile = (typeof THUMB_FILES)[number];

/** Folder of a batch's thumbnails: `OUTPUT_DIR/<batchId>/.thumbs`. */
export function thumbsDir(outputDir: string, batchId: string): string {
  return join(outputDir, batchId, '.thumbs');
}

/** Path of one thumbnail of an image: `<thumbsDir>/<jobId>-<file>`. */
export function thumbPath(outputDir: string, batchId: string, jobId: string, file: ThumbFile): string {
  return join(thumbsDir(outputDir, batchId), `${jobId}-${file}`);
}
