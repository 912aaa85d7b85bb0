/**
 * The `Retry-After` header (RFC 9110 §10.2.3): either a whole number of seconds (`120`) or an HTTP-date
 * (`Wed, 21 Oct 2026 07:28:00 GMT`). kie.ai does not document sending it (kie-samples README: "No public source
 * shows ... a Retry-After header"), so it is read defensively on every answer, whatever the status.
 */

/** Longest wait taken from a header at all (a day); anything beyond is treated as invalid. */
const MAX_RETRY_AFTER_MS = 86_400_000;

/**
 * The wait a `Retry-After` value asks for, in ms from `nowMs`, or null when absent or invalid (negative, not a
 * number nor a date, over a day). A date in the past is a wait of 0. Fractional seconds (`1.5`) are accepted
 * leniently. Never throws.
 */
export function parseRetryAfter(value: string | readonly string[] | undefined | null, nowMs = Date.now()): number | null {
  const text = (Array.isArray(value) ? value[0] : value) as string | undefined | null;
  if (typeof text !== 'string') return null;
  const v = text.trim();
  if (v === '') return null;
  if (/^\d+(\.\d+)?$/.test(v)) {
    const ms = Math.round(Number(v) * 1000);
    return ms <= MAX_RETRY_AFTER_MS ? ms : null;
  }
  // An HTTP-date names a weekday and a time zone; a bare number with a sign or unit ("-5", "10s") is invalid.
  if (!/^[A-Za-z]{3},?\s/.test(v) && !/GMT|UTC/i.test(v)) return null;
  const at = Date.parse(v);
  if (!Number.isFinite(at)) return null;
  const ms = Math.max(0, at - nowMs);
  return ms <= MAX_RETRY_AFTER_MS ? ms : null;
}
