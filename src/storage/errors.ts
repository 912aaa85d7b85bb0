/**
 * Storage errors. Two kinds are the STORE's fault, not the image's, and pause the download lane instead of
 * spending an image's tries (src/worker/download-lane.ts):
 * - `StorageAuthError`: the store refused who we are or where we write (bad or missing credentials, no
 *   permission, no such bucket);
 * - `StorageUnavailableError`: the store could not be reached or could not answer (connection refused or reset,
 *   DNS failure, timeouts, HTTP 5xx, throttling such as S3's 503 SlowDown, a full or failing disk).
 * A plain `StorageError` is about the object itself (its stored checksum or size does not match...).
 * Messages never hold credentials. Check by `instanceof` or `name`.
 */
export class StorageError extends Error {
  override readonly name: string = 'StorageError';
  constructor(
    message: string,
    /** A try again later may succeed (network, 5xx). */
    readonly retryable = true,
  ) {
    super(message);
  }
}

export class StorageAuthError extends StorageError {
  override readonly name = 'StorageAuthError';
  constructor(message: string) {
    super(message, false);
  }
}

export function isStorageAuthError(e: unknown): e is StorageAuthError {
  return e instanceof StorageAuthError || (e as Error | undefined)?.name === 'StorageAuthError';
}

export function isStorageError(e: unknown): e is StorageError {
  return e instanceof StorageError || ['StorageError', 'StorageAuthError', 'StorageUnavailableError'].includes((e as Error | undefined)?.name ?? '');
}

export class StorageUnavailableError extends StorageError {
  override readonly name = 'StorageUnavailableError';
  constructor(message: string) {
    super(message, true);
  }
}

export function isStorageUnavailableError(e: unknown): e is StorageUnavailableError {
  return e instanceof StorageUnavailableError || (e as Error | undefined)?.name === 'StorageUnavailableError';
}

/** A failure of the store itself (auth or unavailable): no try of the image would do better until it is fixed. */
export function isStoreFault(e: unknown): e is StorageError {
  return isStorageAuthError(e) || isStorageUnavailableError(e);
}
