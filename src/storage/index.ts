/**
 * Where results are stored: one `Storage` interface (`put`, `head`, `urlOf`, `stagingDir`) with a file backend
 * and an S3 backend, chosen by OUTPUT_URL (or OUTPUT_DIR). The download lane stores every result through it, and
 * so can anything else that writes next to the results (results.jsonl, summary.json). The S3 backend, and the AWS
 * SDK with it, is loaded only when OUTPUT_URL is an s3:// URL.
 *
 * ```ts
 * const storage = await openStorage(config); // null without OUTPUT_URL / OUTPUT_DIR
 * await storage?.put(`${batchId}/summary.json`, Readable.from([json]), { contentType: 'application/json' });
 * ```
 */
import { Readable } from 'node:stream';
import type { Config } from '../config/index.js';
import { FileStorage } from './file.js';
import type { S3StorageOptions } from './s3.js';
import type { Storage } from './types.js';

export type { ObjectBody, PutOptions, PutSource, Storage, StoredObject } from './types.js';
export { StorageError, StorageAuthError, StorageUnavailableError, isStorageError, isStorageAuthError, isStorageUnavailableError, isStoreFault } from './errors.js';
export { FileStorage, checkKey, hashFile } from './file.js';
export type { S3StorageOptions } from './s3.js';
export * from './name-template.js';

/** Extra options of the S3 backend (tests: explicit credentials, part size). */
export type OpenStorageOptions = Pick<S3StorageOptions, 'credentials' | 'partSize' | 'queueSize' | 'maxAttempts'>;

/** The storage of `config.output`, or null when no output is configured. Opening makes no request. */
export async function openStorage(config: Pick<Config, 'output' | 's3'>, options: OpenStorageOptions = {}): Promise<Storage | null> {
  const out = config.output;
  if (!out) return null;
  if (out.kind === 'file') return new FileStorage(out.dir);
  const { S3Storage } = await import('./s3.js');
  return new S3Storage({
    bucket: out.bucket,
    prefix: out.prefix,
    endpoint: config.s3.endpoint,
    region: config.s3.region,
    forcePathStyle: config.s3.forcePathStyle,
    profile: config.s3.profile,
    ...options,
  });
}

/** The object `probeStorage` writes, under the location: a name starting with "." (OUTPUT_NAME never makes one). */
export const PROBE_KEY = '.kie-upscale-probe';

/**
 * Proves the store takes writes now: stores a few bytes under {@link PROBE_KEY} (replacing the last probe, so at
 * most one such object exists) and reads its size and checksum back (`put` does). Used at worker start and by the
 * download lane's pause probe. Throws `StorageAuthError` (credentials, permissions, missing bucket),
 * `StorageUnavailableError` (unreachable, 5xx, throttled, disk full) or `StorageError`.
 */
export async function probeStorage(storage: Storage, signal?: AbortSignal): Promise<void> {
  const body = Buffer.from(`kie-upscale-queue store probe ${new Date().toISOString()}\n`);
  const sha256 = (await import('node:crypto')).createHash('sha256').update(body).digest('hex');
  await storage.put(PROBE_KEY, Readable.from([body]), { sha256, contentType: 'text/plain', ...(signal ? { signal } : {}) });
}
