import { formatCount } from '../config/units.js';
import { MODEL_NAMES, NO_MODEL_GIVEN } from '../kie/models.js';

/** A wrong or conflicting flag: the CLI prints the message (which says how to fix it) and exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/**
 * The usage error of an input whose every line was refused for naming no model while `--model` was not given
 * (`upscale enqueue`, `upscale estimate`): the flag is missing, not the lines at fault. Null when that is not the case
 * (some line was taken, a line failed otherwise, or `--model` was given).
 */
export function modelFlagNeeded(model: string | undefined, taken: number, rejected: readonly { reason: string }[]): UsageError | null {
  if (model !== undefined || taken > 0 || rejected.length === 0 || !rejected.every((r) => r.reason.startsWith(NO_MODEL_GIVEN))) return null;
  return new UsageError(
    `--model is needed: none of the ${formatCount(rejected.length, 'image')} names its own model (a CSV column or JSONL field \`model\` can); ` +
      `use --model ${MODEL_NAMES.join(' or --model ')}`,
  );
}
