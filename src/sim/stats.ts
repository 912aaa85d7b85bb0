/**
 * What the simulator counts, so tests can prove that no limit was broken and nothing was paid twice.
 * Served by `GET /sim/stats` and `Simulator.stats()`.
 */
import type { RateLimit } from '../config/units.js';

export interface SimStats {
  /** createTask calls that created a task. */
  createAccepted: number;
  /** createTask calls answered 429 (nothing created, not counted in the window). */
  createRejected429: number;
  /** API calls answered 455 (maintenance). */
  rejected455: number;
  /** API calls answered 401 (missing or unknown key). */
  rejected401: number;
  /** createTask calls answered 402 (credits below the price). */
  rejected402: number;
  /** API calls answered 422 (validation; includes `recordInfo is null`). */
  rejected422: number;
  /** API calls answered 500 (injected, or the missing-`input` quirk). */
  errors500: number;
  /** createTask calls answered 501 (injected). */
  errors501: number;
  /** API calls answered with the HTML 502 page. */
  htmlErrors: number;
  /** API answers whose body was cut (the call was processed). */
  malformed: number;
  /** API answers delayed by `slowMs`. */
  slowed: number;
  /** recordInfo calls let through by the query limit. */
  queries: number;
  /** recordInfo calls answered 429. */
  queries429: number;
  /**
   * The most createTask calls one key's window held at once: the most in any interval of the (scaled) window.
   * A call is counted from its arrival, so one still being validated is included: an upper bound, never above `createLimit.max`.
   */
  peakCreateInWindow: number;
  /** The same for recordInfo. */
  peakQueriesInWindow: number;
  /** The createTask limit, window already scaled. */
  createLimit: RateLimit;
  /** The recordInfo limit, window already scaled. */
  queryLimit: RateLimit;
  /** Accepted createTask calls per input URL. */
  perInput: Record<string, number>;
  /** Inputs with more than one accepted createTask (paid twice unless a retry was intended). */
  duplicatedInputs: string[];
  /** Tasks that ended `success` / `fail`, and tasks not ended yet. */
  tasksSucceeded: number;
  tasksFailed: number;
  tasksInFlight: number;
  /** Callback POSTs made (a duplicate counts twice). */
  callbacksSent: number;
  /** Completions whose callback was dropped on purpose (`callbackDropRate`). */
  callbacksDropped: number;
  /** Completions whose callback was sent twice on purpose. */
  callbacksDuplicated: number;
  /** Callback POSTs that got no 2xx answer (network error, timeout, non-2xx); never retried. */
  callbacksFailed: number;
  /** Files stored by the three upload endpoints. */
  uploads: number;
  /** Remaining credit balance. */
  credits: number;
  /** Calls of the credit endpoint (GET /api/v1/chat/credit) that were answered (past the key check). */
  creditChecks: number;
  /**
   * API calls received, by path (`/api/v1/jobs/createTask`, `/api/v1/jobs/recordInfo`, `/api/v1/chat/credit`, the
   * upload paths...), counted on arrival before anything can refuse them: a call answered 401, 455 or the HTML 502
   * counts too. Tells "nothing was sent" apart from "nothing was accepted".
   */
  callsByPath: Record<string, number>;
}

/** The plain counters; the rest of `SimStats` is derived when a snapshot is taken. */
export type Counters = Pick<
  SimStats,
  | 'createAccepted'
  | 'createRejected429'
  | 'rejected455'
  | 'rejected401'
  | 'rejected402'
  | 'rejected422'
  | 'errors500'
  | 'errors501'
  | 'htmlErrors'
  | 'malformed'
  | 'slowed'
  | 'queries'
  | 'queries429'
  | 'callbacksSent'
  | 'callbacksDropped'
  | 'callbacksDuplicated'
  | 'callbacksFailed'
  | 'uploads'
  | 'creditChecks'
>;

export function zeroCounters(): Counters {
  return {
    createAccepted: 0,
    createRejected429: 0,
    rejected455: 0,
    rejected401: 0,
    rejected402: 0,
    rejected422: 0,
    errors500: 0,
    errors501: 0,
    htmlErrors: 0,
    malformed: 0,
    slowed: 0,
    queries: 0,
    queries429: 0,
    callbacksSent: 0,
    callbacksDropped: 0,
    callbacksDuplicated: 0,
    callbacksFailed: 0,
    uploads: 0,
    creditChecks: 0,
  };
}

/** Counters plus the accepted creates per input and the calls received per path. */
export class StatsCollector {
  counters: Counters = zeroCounters();
  private perInput = new Map<string, number>();
  private byPath = new Map<string, number>();

  /** An API call arrived at `path` (no query string). */
  arrived(path: string): void {
    this.byPath.set(path, (this.byPath.get(path) ?? 0) + 1);
  }

  callsByPath(): Record<string, number> {
    return Object.fromEntries(this.byPath);
  }

  /** Counts the answer code of an API call. */
  countCode(code: number): void {
    const c = this.counters;
    if (code === 455) c.rejected455++;
    else if (code === 401) c.rejected401++;
    else if (code === 402) c.rejected402++;
    else if (code === 422) c.rejected422++;
    else if (code === 500) c.errors500++;
    else if (code === 501) c.errors501++;
  }

  acceptedCreate(input: string): void {
    this.counters.createAccepted++;
    this.perInput.set(input, (this.perInput.get(input) ?? 0) + 1);
  }

  inputs(): { perInput: Record<string, number>; duplicatedInputs: string[] } {
    const perInput: Record<string, number> = {};
    const duplicatedInputs: string[] = [];
    for (const [input, n] of this.perInput) {
      perInput[input] = n;
      if (n > 1) duplicatedInputs.push(input);
    }
    return { perInput, duplicatedInputs };
  }

  reset(): void {
    this.counters = zeroCounters();
    this.perInput.clear();
    this.byPath.clear();
  }
}
