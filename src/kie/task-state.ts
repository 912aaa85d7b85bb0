/**
 * Reading kie.ai's task `state` word as it really comes (kie-samples README: "A tolerant client should ignore unknown
 * keys and unknown states"). The documented words are `waiting`, `queuing`, `generating`, `success` and `fail`
 * (KIE_API.md); live answers and other clients also show `pending`, upper case, `failed`, `error`, `""`, a missing
 * state and `data: null`. Only a *recognised* terminal word ends a task: anything else means "still running", so an
 * unexpected word can never fail an image that kie.ai is still working on (the deadline bounds the wait).
 */
import type { TaskState } from './types.js';

/** Terminal synonyms, compared after trimming and lower-casing. */
const SUCCESS_WORDS = new Set(['success', 'succeeded', 'successful', 'succeed', 'completed', 'complete', 'done', 'finished']);
const FAIL_WORDS = new Set(['fail', 'failed', 'failure', 'error', 'errored']);
/** Running words that keep their own name (the documented ones); `pending` is kie support's word for waiting. */
const RUNNING_WORDS: Readonly<Record<string, TaskState>> = {
  waiting: 'waiting',
  pending: 'waiting',
  queuing: 'queuing',
  queueing: 'queuing',
  queued: 'queuing',
  generating: 'generating',
  processing: 'generating',
  running: 'generating',
  in_progress: 'generating',
};

export interface ReadState {
  /** The normalised state; `unknown` when kie's word is missing or not recognised (treated as running). */
  state: TaskState;
  /** kie's word exactly as sent (a non-string is JSON-encoded); null when the answer had no state at all. */
  rawState: string | null;
}

/** Maps kie's `state` value (any JSON value, or undefined when absent) to a `TaskState`. Never throws. */
export function readState(value: unknown): ReadState {
  if (value === undefined || value === null) return { state: 'unknown', rawState: null };
  const raw = typeof value === 'string' ? value : (JSON.stringify(value) ?? typeof value);
  const word = raw.trim().toLowerCase().replace(/[\s-]+/g, '_');
  if (SUCCESS_WORDS.has(word)) return { state: 'success', rawState: raw };
  if (FAIL_WORDS.has(word)) return { state: 'fail', rawState: raw };
  return { state: RUNNING_WORDS[word] ?? 'unknown', rawState: raw };
}
