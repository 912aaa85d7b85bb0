/**
 * The one mapping from a kie.ai error to what the queue does about it (ARCHITECTURE.md, "Rules the design must keep").
 * Pure: the lanes apply the outcome (rate-limit the queue, pause it, retry the job later, or fail it).
 */
import { isKieError, type KieError } from '../kie/errors.js';

/** Why submission pauses for every image: 401, 402 and 433 will repeat for every createTask until fixed. */
export type AccountRefusal = 'auth' | 'credits' | 'daily-limit';

export type QueueOutcome =
  /**
   * Slow every worker of the lane down (queue.rateLimit), escalating on repeats; the job's attempts are untouched.
   * `retryAfterMs`: the answer's Retry-After (ms), which sets the wait instead of the escalation; null when absent.
   */
  | { kind: 'slow-down'; reason: 'rate-limited' | 'maintenance'; retryAfterMs: number | null }
  /**
   * Pause submission (queue.pause) with `code` (kie's code as a string) and `message`; the job goes back to
   * waiting. The lane probes on its own after a cool-down (src/worker/lane-probe.ts), and `upscale resume` works.
   */
  | { kind: 'pause'; reason: AccountRefusal; code: string; message: string }
  /** Try this job again after an exponential backoff with jitter (at least `retryAfterMs` when given), a bounded number of times. */
  | { kind: 'retry'; reason: string; ambiguous: boolean; retryAfterMs?: number | null }
  /** This request will never succeed as sent: record the image failed with kie's code and message. */
  | { kind: 'fail'; failCode: string; failMsg: string };

export function outcomeFor(error: unknown): QueueOutcome {
  if (!isKieError(error)) {
    const message = error instanceof Error ? error.message : String(error);
    return { kind: 'retry', reason: `unexpected error: ${message}`, ambiguous: false };
  }
  const e: KieError = error;
  const failMsg = e.kieMessage;
  switch (e.name) {
    case 'KieRateLimitError':
      return { kind: 'slow-down', reason: 'rate-limited', retryAfterMs: e.retryAfterMs };
    case 'KieMaintenanceError':
      return { kind: 'slow-down', reason: 'maintenance', retryAfterMs: e.retryAfterMs };
    case 'KieAuthError':
      return { kind: 'pause', reason: 'auth', code: '401', message: `kie.ai rejected the API key (401: ${failMsg}). Fix KIE_API_KEY; the lane probes again on its own, or run \`upscale resume\`.` };
    case 'KieCreditsError':
      return { kind: 'pause', reason: 'credits', code: '402', message: `kie.ai reports insufficient credits (402: ${failMsg}). Add credits; the lane probes again on its own, or run \`upscale resume\`.` };
    case 'KieDailyLimitError':
      return { kind: 'pause', reason: 'daily-limit', code: '433', message: `the API key's daily limit is reached (433: ${failMsg}). The lane probes again when the daily limit resets (KIE_DAILY_RESET), or run \`upscale resume\` after raising it.` };
    case 'KieServerError':
    case 'KieGenerationFailedError':
      return { kind: 'retry', reason: `${e.code ?? 'error'} ${failMsg}`, ambiguous: false, retryAfterMs: e.retryAfterMs };
    case 'KieBadResponseError':
      // A 2xx answer we could not read (truncated, not JSON) was processed: a createTask may have made a task.
      return { kind: 'retry', reason: `bad answer: ${failMsg}`, ambiguous: isSuccessStatus(e.httpStatus) };
    case 'KieNetworkError':
      return { kind: 'retry', reason: `network: ${failMsg}`, ambiguous: (e as KieError & { maybeSent?: boolean }).maybeSent !== false };
    case 'KieTimeoutError':
      return { kind: 'retry', reason: `timeout: ${failMsg}`, ambiguous: true };
    case 'KieUnknownCodeError':
      // A gateway's 502/503/504 page (no envelope) is a passing fault in front of kie.ai, not kie's verdict; the
      // request may or may not have reached kie.ai.
      if (e.code !== null && e.code === e.httpStatus && e.code >= 502 && e.code <= 504) {
        return { kind: 'retry', reason: `gateway ${e.code}: ${failMsg}`, ambiguous: true, retryAfterMs: e.retryAfterMs };
      }
      return { kind: 'fail', failCode: String(e.code ?? 'error'), failMsg };
    default:
      // 404, 422, 505 and unknown codes: as sent, this request will not succeed.
      return { kind: 'fail', failCode: String(e.code ?? 'error'), failMsg };
  }
}

function isSuccessStatus(status: number | null): boolean {
  return status !== null && status >= 200 && status < 300;
}

/** Exponential backoff with full jitter: a random delay in [base·2^(n-1)/2, base·2^(n-1)], capped. */
export function retryDelay(retry: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, retry - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
