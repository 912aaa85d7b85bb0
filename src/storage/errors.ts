/**
 * Storage errors. `StorageAuthError` means the store refused who we are or where we write (bad or missing
 * credentials, no permission, no such bucket): every try would fail the same way, so the download lane pauses
 * rather than spending tries. Messages never hold credentials. Check by `instanceof` or `name`.
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
  return e instanceof StorageError || ['StorageError', 'StorageAuthError'].includes((e as Error | undefined)?.name ?? '');
}
