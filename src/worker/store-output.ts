/**
 * Naming and storing a checked result: the download lane stages each result in a local file, checks it, then
 * calls this module to give it its name (the batch's OUTPUT_NAME, pinned at enqueue) and store it through
 * `src/storage`. Idempotent: an object already under that name with the same sha256 is not uploaded again.
 */
import type { Logger } from '../log.js';
import type { ResultRecord } from '../results/record.js';
import type { ResultStore } from '../results/store.js';
import {
  nthResultName,
  parseNameTemplate,
  renderName,
  StorageError,
  type NameTemplate,
  type Storage,
  type StoredObject,
} from '../storage/index.js';

/** A result downloaded to the staging folder and checked (decodes as an image of that size). */
export interface StagedResult {
  /** The staged file (deleted by the lane afterwards). */
  file: string;
  sha256: string;
  width: number;
  height: number;
  /** File extension of the decoded format, without the dot (`jpg`, `png`, `webp`...). */
  ext: string;
  contentType: string;
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  jpg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  gif: 'image/gif',
  tif: 'image/tiff',
  avif: 'image/avif',
};

export function contentTypeOf(ext: string): string {
  return CONTENT_TYPES[ext] ?? 'application/octet-stream';
}

const templates = new Map<string, NameTemplate>();

/** The template a batch's results are named by: the one pinned at enqueue, else this process' OUTPUT_NAME. */
export async function templateOf(store: ResultStore, batchId: string, fallback: string): Promise<NameTemplate> {
  const source = (await store.getOutputName(batchId)) ?? fallback;
  let t = templates.get(source);
  if (!t) {
    t = parseNameTemplate(source);
    if (templates.size > 100) templates.clear();
    templates.set(source, t);
  }
  return t;
}

/** The name of the `index`-th result of an image; throws a permanent `StorageError` when it cannot be named. */
export function nameOf(template: NameTemplate, record: ResultRecord, staged: StagedResult, index: number): string {
  const rendered = renderName(template, { ...record, ext: staged.ext, width: staged.width, height: staged.height });
  if (!rendered.ok) throw new StorageError(`cannot name the result: ${rendered.reason}`, false);
  return nthResultName(rendered.name, index);
}

/**
 * Stores a staged result under `key` unless the same content is already there (same sha256). `signal` aborts the
 * write (the drain deadline). Throws `StorageError` / `StorageAuthError` from the backend.
 */
export async function storeResult(
  storage: Storage,
  key: string,
  staged: StagedResult,
  log: Logger,
  signal?: AbortSignal,
): Promise<{ stored: StoredObject; uploaded: boolean }> {
  const existing = await storage.head(key);
  if (existing?.sha256 === staged.sha256) return { stored: existing, uploaded: false };
  if (existing) log.info({ url: existing.url }, 'replacing an object of the same name with different content');
  const stored = await storage.put(key, { file: staged.file }, { sha256: staged.sha256, contentType: staged.contentType, ...(signal ? { signal } : {}) });
  return { stored, uploaded: true };
}

/** Whether a record's stored result is still there with its checksum (then nothing needs downloading). */
export async function alreadyStored(storage: Storage, record: ResultRecord): Promise<boolean> {
  if (!record.outputUrl || !record.sha256) return false;
  const key = storage.keyOf(record.outputUrl);
  if (key === null) return false;
  const found = await storage.head(key).catch(() => null);
  return found?.sha256 === record.sha256;
}
