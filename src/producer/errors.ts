/** The producer's two errors: bad input as a whole (nothing or part enqueued), and a failure while storing. */

/**
 * The input cannot be used at all: a missing or unreadable file, a directory, a CSV without a `url` column, a bad
 * batch id or default model. The message names the path or option and the reason; the CLI shows it as a usage
 * error (exit 2). Check by `instanceof` or `name`.
 */
export class InputError extends Error {
  override readonly name = 'InputError';
}

/**
 * Storing a chunk failed (Redis unreachable...). Images of earlier chunks are enqueued; running the same input
 * again into the same batch continues where it stopped, because image ids are stable.
 */
export class EnqueueError extends Error {
  override readonly name = 'EnqueueError';
  constructor(
    readonly batchId: string,
    readonly enqueued: number,
    override readonly cause: unknown,
  ) {
    const why = cause instanceof Error ? cause.message : String(cause);
    super(
      `enqueue into batch ${batchId} stopped after ${enqueued} new images: ${why}. ` +
        `Run it again with --batch ${batchId} to continue (images already enqueued are skipped).`,
    );
  }
}

export function isInputError(e: unknown): e is InputError {
  return e instanceof InputError || (e as Error | undefined)?.name === 'InputError';
}
