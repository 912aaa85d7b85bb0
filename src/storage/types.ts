/** The one interface every output backend implements (file, s3), and what it answers. */
import type { Readable } from 'node:stream';

/** An object as stored. */
export interface StoredObject {
  /** The name under the location (OUTPUT_NAME rendered): `batch/abc-photo.png`. */
  readonly key: string;
  /** Where it is, without credentials: `file:///out/batch/abc-photo.png`, `s3://bucket/prefix/batch/abc-photo.png`. */
  readonly url: string;
  /** Local path, for the file backend only (null for s3). */
  readonly path: string | null;
  /** Bytes. */
  readonly size: number;
  /** Hex sha256 of the content, as kept with it (object metadata `sha256` on S3; computed on disk); null if unknown. */
  readonly sha256: string | null;
}

export interface PutOptions {
  /** Hex sha256 of the content: kept in the object's metadata; the file backend checks the bytes against it. */
  sha256?: string;
  /** @defaultValue `application/octet-stream` */
  contentType?: string;
  /**
   * Aborts the write (the worker's drain deadline): nothing is left under the key, an S3 multipart upload is
   * aborted, and `put` rejects with the signal's reason.
   */
  signal?: AbortSignal;
}

/** An object's content, as `get` returns it. */
export interface ObjectBody {
  /** The bytes, streamed; the caller reads or destroys it. */
  body: Readable;
  /** Bytes. */
  size: number;
}

/**
 * What to store: a local file (`{ file }`, left in place; the caller deletes it) or a readable stream of bytes
 * (results.jsonl, summary.json...). Neither is held in memory whole: S3 uploads go in parts.
 */
export type PutSource = { file: string } | Readable;

export interface Storage {
  readonly kind: 'file' | 's3';
  /** The location, without credentials (`file:///out`, `s3://bucket/prefix`). */
  readonly url: string;
  /** The URL `key` would have. */
  urlOf(key: string): string;
  /** The key of a URL this storage gave (`urlOf`, `StoredObject.url`), or null for a URL elsewhere. */
  keyOf(url: string): string | null;
  /**
   * The stored object under `key`, or null when there is none. Throws `StorageError` (auth problems as
   * `StorageAuthError`) when the store cannot answer.
   */
  head(key: string): Promise<StoredObject | null>;
  /**
   * Whether an object is under `key`, without reading its content (the file backend's `head` hashes the file).
   * Throws like `head`.
   */
  exists(key: string): Promise<boolean>;
  /** The content under `key`, or null when there is none. Throws like `head`. */
  get(key: string): Promise<ObjectBody | null>;
  /**
   * Stores `source` under `key`, atomically: nothing is visible under `key` until the whole content is there (file:
   * a temp file renamed into place; s3: a single PUT or a multipart upload, which S3 shows only once completed and
   * aborts on failure). An existing object under `key` is replaced. Throws `StorageError` / `StorageAuthError`.
   */
  put(key: string, source: PutSource, options?: PutOptions): Promise<StoredObject>;
  /**
   * A local folder where a file to `put` is best prepared (created on demand): inside the output folder for the
   * file backend (so `put` links it into place without copying), the OS temp folder for s3.
   */
  stagingDir(): Promise<string>;
  /** Releases connections. */
  close(): void;
}
