/**
 * Parsers for the two value shapes the environment uses: durations (`15m`, `1m30s`, `500ms`) and
 * rate limits (`20/10s`, `10/s`). Each returns a value or throws an `Error` whose message is the reason,
 * so the config schema can collect every problem into one report.
 */

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;

/** Parses `15m`, `30s`, `500ms`, `1h`, `2d` or a sum such as `1m30s` into milliseconds (> 0). */
export function parseDuration(text: string): number {
  const s = text.trim();
  if (s === '') throw new Error('is empty; expected a duration such as 30s, 15m or 500ms');
  if (/^-/.test(s)) throw new Error(`"${text}" is negative; a duration must be positive`);
  if (/^\d+(\.\d+)?$/.test(s)) {
    throw new Error(`"${text}" has no unit; write it with one of ms, s, m, h, d (for example ${s}s)`);
  }
  let total = 0;
  let consumed = 0;
  DURATION_PART.lastIndex = 0;
  for (let m = DURATION_PART.exec(s); m; m = DURATION_PART.exec(s)) {
    total += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
    consumed = DURATION_PART.lastIndex;
  }
  if (consumed !== s.length) {
    throw new Error(`"${text}" is not a duration; expected forms such as 30s, 15m, 1m30s or 500ms`);
  }
  if (total <= 0) throw new Error(`"${text}" is zero; a duration must be positive`);
  return Math.round(total);
}

/** A rate limit: at most `max` events in any window of `durationMs`. */
export interface RateLimit {
  readonly max: number;
  readonly durationMs: number;
}

/** Parses `20/10s`, `10/1s` or `10/s` (the unit alone means one of it). */
export function parseRateLimit(text: string): RateLimit {
  const s = text.trim();
  const m = /^(\d+)\s*\/\s*(.+)$/.exec(s);
  if (!m) throw new Error(`"${text}" is not a rate limit; expected COUNT/DURATION such as 20/10s or 10/1s`);
  const max = Number(m[1]);
  if (!Number.isSafeInteger(max) || max < 1) throw new Error(`"${text}": the count must be a whole number of at least 1`);
  const per = (m[2] as string).trim();
  let durationMs: number;
  try {
    durationMs = parseDuration(/^(ms|s|m|h|d)$/.test(per) ? `1${per}` : per);
  } catch (e) {
    throw new Error(`"${text}": the window ${(e as Error).message}`);
  }
  return { max, durationMs };
}

/** Formats milliseconds for people: `950ms`, `12.5s`, `3m20s`, `2h05m`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '?';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)}s`;
  const totalS = Math.round(ms / 1000);
  if (totalS < 3600) return `${Math.floor(totalS / 60)}m${String(totalS % 60).padStart(2, '0')}s`;
  const totalM = Math.round(totalS / 60);
  return `${Math.floor(totalM / 60)}h${String(totalM % 60).padStart(2, '0')}m`;
}

/**
 * A count with its noun for people: `1 image`, `2 images`, `0 images`, `1 batch`, `3 batches` (`plural` when the noun
 * does not take a plain `s`).
 */
export function formatCount(n: number, noun: string, plural = /(s|sh|ch|x)$/.test(noun) ? `${noun}es` : `${noun}s`): string {
  return `${n} ${n === 1 ? noun : plural}`;
}
