/**
 * kie.ai callbacks, as pure functions for the HTTP server: reading the POSTed body, and checking kie's opt-in
 * webhook signature (`X-Webhook-Signature` = base64(HMAC-SHA256(`${taskId}.${timestamp}`, key)),
 * `X-Webhook-Timestamp` in Unix seconds). The signature covers the taskId and timestamp only, not the body:
 * a verified callback says which task finished, never what its result is (recordInfo says that).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { isRecord } from './envelope.js';
import { type KieBadResponseError, kieErrorFrom } from './errors.js';
import { taskIdOf } from './task-info.js';
import { readState } from './task-state.js';
import type { TaskState } from './types.js';
import { formatDuration } from '../config/units.js';

/** The `endpoint` of errors about callbacks (they are received, not called). */
export const CALLBACK_ENDPOINT = 'POST (callback)';

/** What a callback body tells: which task, and the state and code it claims (hints only). */
export interface ParsedCallback {
  taskId: string;
  /** `data.state`, normalised (task-state.ts); null when the body has no state. */
  state: TaskState | null;
  /** The envelope `code` (200 on success, 501 on failure), else null. */
  code: number | null;
}

function rejectBody(reason: string): KieBadResponseError {
  return kieErrorFrom(CALLBACK_ENDPOINT, { kind: 'bad-response', httpStatus: null, message: reason });
}

/**
 * Reads a callback body (an object, or its JSON text / Buffer). The taskId is looked for in `data` and at the root,
 * as `taskId` or `task_id` (kie's signed example puts `taskId` at the root and `task_id` in `data`; the Market
 * callbacks carry only `data.taskId`: kie-samples 40-47). Throws a `KieBadResponseError` whose `kieMessage` says
 * what is wrong (not JSON, not an object, no taskId anywhere).
 */
export function parseCallbackBody(body: unknown): ParsedCallback {
  let value: unknown = Buffer.isBuffer(body) ? body.toString('utf8') : body;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      throw rejectBody('callback body is not JSON');
    }
  }
  if (!isRecord(value)) throw rejectBody('callback body is not a JSON object');
  const data = isRecord(value.data) ? value.data : null;
  const taskId = taskIdOf(data) ?? taskIdOf(value);
  if (taskId === null) throw rejectBody('callback has no taskId (looked for taskId / task_id in data and at the root)');
  const read = readState(data?.state);
  const rawCode = value.code;
  let code: number | null = null;
  if (typeof rawCode === 'number' && Number.isInteger(rawCode)) code = rawCode;
  else if (typeof rawCode === 'string' && /^\s*\d{1,4}\s*$/.test(rawCode)) code = Number(rawCode);
  return { taskId, state: read.rawState === null ? null : read.state, code };
}

/** base64(HMAC-SHA256(`${taskId}.${timestampSeconds}`, key)), as kie.ai signs callbacks. */
export function signWebhook(taskId: string, timestampSeconds: number | string, key: string): string {
  return createHmac('sha256', key).update(`${taskId}.${timestampSeconds}`).digest('base64');
}

export interface WebhookSignatureInput {
  taskId: string;
  /** `X-Webhook-Timestamp`: Unix seconds, as sent (the signature covers this exact text). */
  timestamp: string | number | null | undefined;
  /** `X-Webhook-Signature`: base64 (padding and URL-safe alphabet tolerated). */
  signature: string | null | undefined;
  /** The webhook HMAC key from kie.ai's settings (`config.webhookHmacKey`). */
  key: string;
  /** The current time in Unix ms. @defaultValue `Date.now()` */
  nowMs?: number;
  /** Largest accepted distance between the timestamp and now, either way, in ms. @defaultValue `300_000` (5 min) */
  toleranceMs?: number;
}

export type WebhookVerdict = { ok: true } | { ok: false; reason: string };

/** Standard base64 without padding, so `abc=`, `abc` and URL-safe `ab-_` forms compare alike. */
function canonicalBase64(value: string): string {
  return value.trim().replace(/-/g, '+').replace(/_/g, '/').replace(/=+$/, '');
}

/** Checks a callback's signature and timestamp in constant time. Never throws. */
export function verifyWebhookSignature(input: WebhookSignatureInput): WebhookVerdict {
  const { taskId, signature, key, nowMs = Date.now(), toleranceMs = 300_000 } = input;
  if (typeof key !== 'string' || key === '') return { ok: false, reason: 'no webhook key configured' };
  if (typeof taskId !== 'string' || taskId === '') return { ok: false, reason: 'no taskId to verify' };
  if (typeof signature !== 'string' || signature.trim() === '')
    return { ok: false, reason: 'missing signature' };
  const ts = input.timestamp;
  if (ts === null || ts === undefined || (typeof ts === 'string' && ts.trim() === '')) {
    return { ok: false, reason: 'missing timestamp' };
  }
  const tsText = typeof ts === 'number' ? String(ts) : ts.trim();
  if (!/^\d{1,12}$/.test(tsText))
    return { ok: false, reason: `timestamp ${JSON.stringify(tsText.slice(0, 20))} is not Unix seconds` };
  const skewMs = nowMs - Number(tsText) * 1000;
  if (Math.abs(skewMs) > toleranceMs) {
    const skew = formatDuration(Math.abs(skewMs));
    return {
      ok: false,
      reason: skewMs > 0 ? `timestamp is ${skew} old` : `timestamp is ${skew} in the future`,
    };
  }
  const expected = Buffer.from(canonicalBase64(signWebhook(taskId, tsText, key)));
  const given = Buffer.from(canonicalBase64(signature));
  if (given.length !== expected.length) {
    timingSafeEqual(expected, expected); // same work either way
    return { ok: false, reason: 'signature has the wrong length' };
  }
  return timingSafeEqual(given, expected) ? { ok: true } : { ok: false, reason: 'signature does not match' };
}
