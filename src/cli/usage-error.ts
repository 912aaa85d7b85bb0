/** A wrong or conflicting flag: the CLI prints the message (which says how to fix it) and exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
