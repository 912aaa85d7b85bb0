/**
 * Reading what came back from kie.ai, before any error class is chosen: the `{ code, msg|message, data }`
 * envelope under any HTTP status, and the failures of an exchange without a usable answer. Both end as a
 * `KieFailure`, which the client hands to the one mapping, `kieErrorFrom()`. Nothing here throws on bad input.
 */
import type { KieFailure } from './errors.js';
import { formatDuration } from '../config/units.js';

/** A success envelope (`code` 200). `body` is the whole JSON object (uploads also carry `success`). */
export interface Envelope {
  code: number;
  message: string;
  data: unknown;
  body: Record<string, unknown>;
}

export type EnvelopeResult = { ok: true; envelope: Envelope } | { ok: false; failure: KieFailure };

/** Thrown by the `data` parsers when an envelope's `data` has the wrong shape; the client maps it to bad-response. */
export class ShapeError extends Error {
  override name = 'ShapeError';
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A single-line excerpt of a body for error messages: tags removed, whitespace collapsed, at most `max` chars. */
export function snippet(text: string, max = 160): string {
  const flat = text
    .replace(/<(script|style)[\s\S]*?<\/\1>/gi, ' ')
    .replace(/<[^>]*>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

/** The envelope code: an integer, or a string of digits (lenient); null for anything else. */
function codeOf(value: unknown): number | null {
  if (typeof value === 'number') return Number.isInteger(value) ? value : null;
  if (typeof value === 'string' && /^\s*\d{1,4}\s*$/.test(value)) return Number(value);
  return null;
}

/** `msg`, else `message` (the documentation uses both), else ''. */
export function messageOf(body: Record<string, unknown>): string {
  for (const key of ['msg', 'message'] as const) {
    const v = body[key];
    if (typeof v === 'string' && v.trim() !== '') return v.trim();
  }
  return '';
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false; reason: string } {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (e) {
    return { ok: false, reason: e instanceof Error ? e.message : String(e) };
  }
}

const is2xx = (status: number): boolean => status >= 200 && status < 300;

function byStatus(httpStatus: number, detail: string): EnvelopeResult {
  return {
    ok: false,
    failure: { kind: 'code', code: httpStatus, httpStatus, message: detail || `HTTP ${httpStatus}` },
  };
}

function bad(httpStatus: number, message: string): EnvelopeResult {
  return { ok: false, failure: { kind: 'bad-response', httpStatus, message } };
}

/**
 * Reads one answer. The envelope `code` is authoritative under any HTTP status (code 200 is a success even
 * under HTTP 500: a createTask answered that way did create a task). Without a usable envelope, a non-2xx
 * status is mapped like the same code; a 2xx answer is a bad response.
 */
export function readEnvelope(httpStatus: number, text: string): EnvelopeResult {
  const parsed = text.trim() === '' ? undefined : parseJson(text);
  if (parsed?.ok && isRecord(parsed.value)) {
    const body = parsed.value;
    const code = codeOf(body.code);
    const message = messageOf(body);
    if (code === 200) return { ok: true, envelope: { code, message, data: body.data ?? null, body } };
    if (code !== null) {
      return { ok: false, failure: { kind: 'code', code, httpStatus, message: message || `code ${code}` } };
    }
    if (!is2xx(httpStatus)) return byStatus(httpStatus, message);
    if (!('code' in body)) return bad(httpStatus, `answer is not an envelope (no code): ${snippet(text)}`);
    return bad(
      httpStatus,
      `envelope code is not a number: ${snippet(JSON.stringify(body.code) ?? 'undefined', 40)}`,
    );
  }
  if (!is2xx(httpStatus)) return byStatus(httpStatus, snippet(text));
  if (parsed === undefined) return bad(httpStatus, 'answer is empty');
  if (!parsed.ok) {
    const what = /^\s*</.test(text)
      ? 'answer is an HTML page, not JSON'
      : `answer is not JSON (${parsed.reason})`;
    return bad(httpStatus, `${what}: ${snippet(text)}`);
  }
  return bad(httpStatus, `answer is not a JSON object: ${snippet(text, 40)}`);
}

/** Error codes raised before a single byte of the request can have left: the call was not sent. */
const NOT_SENT = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_FAIL',
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'EADDRNOTAVAIL',
  'ERR_INVALID_URL',
  'ERR_INVALID_PROTOCOL',
  'CERT_HAS_EXPIRED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

function errorCode(err: unknown): string | undefined {
  const own = (err as { code?: unknown } | null)?.code;
  if (typeof own === 'string') return own;
  const cause = (err as { cause?: { code?: unknown } } | null)?.cause?.code;
  return typeof cause === 'string' ? cause : undefined;
}

/** A plain stand-in for a transport error, so no request config (with its Authorization header) rides along. */
function plainCause(message: string, code: string | undefined): Error {
  const e = new Error(message);
  e.name = 'TransportError';
  return code === undefined ? e : Object.assign(e, { code });
}

/**
 * Maps an exchange that threw (axios error or anything else) to a failure. `deadlineHit`: the whole-exchange
 * signal fired. `scrub` removes secrets from the messages.
 */
export function transportFailure(
  err: unknown,
  ctx: { deadlineHit: boolean; timeoutMs: number; scrub: (text: string) => string },
): KieFailure {
  const code = errorCode(err);
  const raw = ctx.scrub(err instanceof Error ? err.message : String(err));
  const cause = plainCause(raw, code);
  if (ctx.deadlineHit || code === 'ECONNABORTED' || code === 'ETIMEDOUT') {
    return { kind: 'timeout', message: `no answer within ${formatDuration(ctx.timeoutMs)}`, cause };
  }
  if (code === 'ERR_BAD_RESPONSE') {
    const message = /maxContentLength/.test(raw) ? `answer too large (${raw})` : `answer unreadable (${raw})`;
    const status = (err as { response?: { status?: unknown } }).response?.status;
    return { kind: 'bad-response', httpStatus: typeof status === 'number' ? status : null, message, cause };
  }
  if (code === 'ERR_BAD_REQUEST' && /maxBodyLength/.test(raw)) {
    return { kind: 'invalid-request', message: `request body too large (${raw})` };
  }
  const maybeSent = code === undefined || !NOT_SENT.has(code);
  return {
    kind: 'network',
    message: code && !raw.includes(code) ? `${code}: ${raw}` : raw,
    maybeSent,
    cause,
  };
}

/** Thrown while preparing a request the client refuses to send (bad argument, unreadable file); maps to invalid-request. */
export class InputError extends Error {
  override name = 'InputError';
}
