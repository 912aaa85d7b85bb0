/**
 * What a failed status check (recordInfo) means for the poll lane. The same mapping as `outcomeFor` (outcome.ts),
 * with what differs when asking about a task that exists and is paid for:
 * - `422 recordInfo is null` is "not visible yet" (kie answers it for a few seconds after createTask; kie-samples 28,
 *   29): retried a few times, never a parameter error.
 * - `501` on recordInfo is kie's verdict that the task failed (a failure reported without a task record; kie-samples
 *   37): the image fails with 501 and kie's message at once.
 * - 401/402/433 pause submission (outcome.ts); 429/455 slow polling down.
 */
import { isKieError, type KieError } from '../kie/errors.js';
import { outcomeFor, type QueueOutcome } from './outcome.js';

export type PollOutcome =
  | QueueOutcome
  /** kie cannot find the task (yet): check again a few times. */
  | { kind: 'not-visible'; reason: string }
  /** kie says the task failed, without a task record: record the image failed with kie's code and message. */
  | { kind: 'task-failed'; failCode: string; failMsg: string };

export function pollOutcomeFor(error: unknown): PollOutcome {
  if (isKieError(error, 'KieUnknownTaskError')) return { kind: 'not-visible', reason: `${error.code ?? 422} ${error.kieMessage}` };
  if (isKieError(error, 'KieGenerationFailedError')) return { kind: 'task-failed', failCode: String(error.code ?? 501), failMsg: error.kieMessage };
  return outcomeFor(error);
}

/**
 * The failCode recorded when status checks keep failing: kie's own envelope code when it answered one, else what
 * kind of failure it was (`bad-answer`, `network`, `timeout`): never an HTTP status in place of kie's code.
 */
export function pollErrorCode(error: unknown): string {
  if (!isKieError(error)) return 'poll-error';
  const e: KieError = error;
  if (e.name === 'KieBadResponseError') return 'bad-answer';
  if (e.name === 'KieNetworkError') return 'network';
  if (e.name === 'KieTimeoutError') return 'timeout';
  return e.code === null ? 'poll-error' : String(e.code);
}
