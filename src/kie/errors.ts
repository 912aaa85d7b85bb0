/**
 * One error hierarchy for everything kie.ai can answer, produced by one function: `kieErrorFrom()`
 * (after openai-node's `APIError.generate()`). Every error carries the envelope code (or HTTP status),
 * the HTTP status, kie's message and the endpoint. Check with `instanceof` or with `isKieError(e, 'KieRateLimitError')`
 * by name, so errors survive duplicate module copies (as BullMQ does).
 */

export interface KieErrorInit {
  /** The envelope `code` (authoritative), else the HTTP status, else null (network, timeout). */
  code: number | null;
  /** The HTTP status of the answer, or null when there was no answer. */
  httpStatus: number | null;
  /** kie's `msg` / `message`, or a description of what went wrong. */
  message: string;
  /** `METHOD /path` of the call, without host, query secrets or key. */
  endpoint: string;
  /** The answer's `Retry-After`, parsed (retry-after.ts), in ms from when it arrived; null/absent when none or invalid. */
  retryAfterMs?: number | null;
  cause?: unknown;
}

export class KieError extends Error {
  override name: string = 'KieError';
  readonly code: number | null;
  readonly httpStatus: number | null;
  readonly endpoint: string;
  /** How long the answer asked to wait (`Retry-After`), in ms; null when it did not say (or said something invalid). */
  readonly retryAfterMs: number | null;

  constructor(init: KieErrorInit) {
    super(`${init.endpoint}: ${init.code ?? 'no code'} ${init.message}`, init.cause === undefined ? undefined : { cause: init.cause });
    this.code = init.code;
    this.httpStatus = init.httpStatus;
    this.endpoint = init.endpoint;
    this.retryAfterMs = init.retryAfterMs ?? null;
    this.kieMessage = init.message;
  }

  /** kie's own message, without the endpoint/code prefix. */
  readonly kieMessage: string;

  toJSON(): Record<string, unknown> {
    return { name: this.name, code: this.code, httpStatus: this.httpStatus, endpoint: this.endpoint, message: this.kieMessage, retryAfterMs: this.retryAfterMs };
  }
}

/** 401: missing or invalid credentials. Every call will fail the same way. */
export class KieAuthError extends KieError {
  override name = 'KieAuthError';
}
/** 402: insufficient credits. No submission can succeed until credits are added. */
export class KieCreditsError extends KieError {
  override name = 'KieCreditsError';
}
/** 404: resource or endpoint not found. */
export class KieNotFoundError extends KieError {
  override name = 'KieNotFoundError';
}
/** 422: the request's parameters are invalid; it will never succeed as sent. */
export class KieValidationError extends KieError {
  override name = 'KieValidationError';
}
/** 422 "recordInfo is null": kie.ai does not know this taskId. */
export class KieUnknownTaskError extends KieValidationError {
  override name = 'KieUnknownTaskError';
}
/**
 * 433: the API key's daily spending cap is reached ("The current number of points used by apiKey has exceeded the
 * daily limit"; kie-samples 08, HTTP 200). Every createTask that day gets it, until the cap resets.
 */
export class KieDailyLimitError extends KieError {
  override name = 'KieDailyLimitError';
}
/** 429: rejected (not queued) by the rate limiter. */
export class KieRateLimitError extends KieError {
  override name = 'KieRateLimitError';
}
/** 455: service unavailable for maintenance. Account-independent, can last minutes. */
export class KieMaintenanceError extends KieError {
  override name = 'KieMaintenanceError';
}
/** 500: server error. Usually transient; bound the retries. */
export class KieServerError extends KieError {
  override name = 'KieServerError';
}
/** 501: generation failed. */
export class KieGenerationFailedError extends KieError {
  override name = 'KieGenerationFailedError';
}
/** 505: feature disabled. */
export class KieFeatureDisabledError extends KieError {
  override name = 'KieFeatureDisabledError';
}
/** Any other code (403 from Cloudflare, 408, ...). */
export class KieUnknownCodeError extends KieError {
  override name = 'KieUnknownCodeError';
}
/** No answer: connection refused, reset, DNS failure. `maybeSent` is true when the request may have reached kie.ai. */
export class KieNetworkError extends KieError {
  override name = 'KieNetworkError';
  maybeSent = true;
}
/** No answer within the timeout. The request may have been processed. */
export class KieTimeoutError extends KieError {
  override name = 'KieTimeoutError';
}
/** An answer that is not a usable envelope: not JSON, HTML, wrong types, missing fields. */
export class KieBadResponseError extends KieError {
  override name = 'KieBadResponseError';
}

const BY_CODE: Record<number, new (init: KieErrorInit) => KieError> = {
  401: KieAuthError,
  402: KieCreditsError,
  404: KieNotFoundError,
  422: KieValidationError,
  429: KieRateLimitError,
  433: KieDailyLimitError,
  455: KieMaintenanceError,
  500: KieServerError,
  501: KieGenerationFailedError,
  505: KieFeatureDisabledError,
};

/** What went wrong, as `kieErrorFrom` takes it. */
export type KieFailure =
  | { kind: 'code'; code: number; httpStatus: number | null; message: string; retryAfterMs?: number | null }
  | { kind: 'network'; message: string; maybeSent: boolean; cause?: unknown }
  | { kind: 'timeout'; message: string; cause?: unknown }
  | { kind: 'bad-response'; httpStatus: number | null; message: string; cause?: unknown; retryAfterMs?: number | null }
  /** Refused by the client before (or while) sending: empty taskId, body over the size limit. Never succeeds as sent. */
  | { kind: 'invalid-request'; message: string };

/**
 * The one mapping from a failed exchange to a `KieError` subclass. An envelope code wins over the HTTP status;
 * a non-2xx status without an envelope is mapped exactly as the same `code` would be.
 */
export function kieErrorFrom(endpoint: string, failure: KieFailure): KieError {
  switch (failure.kind) {
    case 'network': {
      const e = new KieNetworkError({ code: null, httpStatus: null, message: failure.message, endpoint, cause: failure.cause });
      e.maybeSent = failure.maybeSent;
      return e;
    }
    case 'timeout':
      return new KieTimeoutError({ code: null, httpStatus: null, message: failure.message, endpoint, cause: failure.cause });
    case 'bad-response':
      return new KieBadResponseError({
        code: failure.httpStatus,
        httpStatus: failure.httpStatus,
        message: failure.message,
        endpoint,
        cause: failure.cause,
        retryAfterMs: failure.retryAfterMs ?? null,
      });
    case 'invalid-request':
      return new KieValidationError({ code: null, httpStatus: null, message: failure.message, endpoint });
    case 'code': {
      const init = { code: failure.code, httpStatus: failure.httpStatus, message: failure.message, endpoint, retryAfterMs: failure.retryAfterMs ?? null };
      if (failure.code === 422 && /recordinfo is null/i.test(failure.message)) return new KieUnknownTaskError(init);
      const Cls = BY_CODE[failure.code] ?? KieUnknownCodeError;
      return new Cls(init);
    }
  }
}

export type KieErrorName =
  | 'KieError'
  | 'KieAuthError'
  | 'KieCreditsError'
  | 'KieNotFoundError'
  | 'KieValidationError'
  | 'KieUnknownTaskError'
  | 'KieRateLimitError'
  | 'KieDailyLimitError'
  | 'KieMaintenanceError'
  | 'KieServerError'
  | 'KieGenerationFailedError'
  | 'KieFeatureDisabledError'
  | 'KieUnknownCodeError'
  | 'KieNetworkError'
  | 'KieTimeoutError'
  | 'KieBadResponseError';

const PARENTS: Partial<Record<KieErrorName, KieErrorName>> = { KieUnknownTaskError: 'KieValidationError' };

/** True when `e` is a KieError (optionally of the named class or a subclass), by instanceof or by name. */
export function isKieError(e: unknown, name: KieErrorName = 'KieError'): e is KieError {
  if (typeof e !== 'object' || e === null) return false;
  let n = (e as { name?: unknown }).name as KieErrorName | undefined;
  if (typeof n !== 'string' || !n.startsWith('Kie')) return false;
  if (name === 'KieError') return 'endpoint' in e;
  while (n) {
    if (n === name) return true;
    n = PARENTS[n];
  }
  return false;
}
