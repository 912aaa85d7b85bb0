/**
 * `meta`: the extra columns of an input line (a CSV's `sku`, a JSON line's other fields), kept with the image as
 * `Record<string, string>` on the submit job and the result record, searchable on the batch page and exported
 * (JSONL: a `meta` object; CSV: one `meta.<key>` column per key). Bounded so that a wide input cannot bloat Redis:
 * at most MAX_META_KEYS keys per image, keys of META_KEY_PATTERN (usable as `{sku}` in a naming template and as a
 * CSV column name), values of at most MAX_META_VALUE_CHARS characters. Empty values are left out; line breaks and
 * tabs inside a value become one space; other control characters reject the line.
 */

/** A meta key: 1-64 letters, digits, `_`, `.` or `-`, starting with a letter, digit or `_`. */
export const META_KEY_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;
/** Most meta keys one image may carry. */
export const MAX_META_KEYS = 16;
/** Longest meta value, in characters. */
export const MAX_META_VALUE_CHARS = 256;

export type Meta = Record<string, string>;

/** Why `key` cannot be a meta key, or null when it can. */
export function metaKeyProblem(key: string): string | null {
  if (META_KEY_PATTERN.test(key)) return null;
  return `"${key.length > 70 ? `${key.slice(0, 64)}…` : key}" cannot be a meta key: use 1-64 letters, digits, "_", "." or "-" (starting with a letter, digit or "_")`;
}

// eslint-disable-next-line no-control-regex -- matching control characters is the point
const OTHER_CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

/** A value as stored: trimmed, line breaks and tabs folded into one space. */
export function normalizeMetaValue(value: string): string {
  return value.replace(/[\r\n\t]+/g, ' ').trim();
}

/**
 * Checks a whole meta object (keys, count, values) as the producer stores it.
 * @returns the reason naming the offending key, or null.
 */
export function metaProblem(meta: Readonly<Record<string, string>>): string | null {
  const keys = Object.keys(meta);
  if (keys.length > MAX_META_KEYS) {
    return `${keys.length} extra fields (meta), over the ${MAX_META_KEYS} limit: ${keys.slice(0, MAX_META_KEYS + 1).join(', ')}${keys.length > MAX_META_KEYS + 1 ? ', …' : ''}`;
  }
  for (const key of keys) {
    const keyProblem = metaKeyProblem(key);
    if (keyProblem) return keyProblem;
    const value = meta[key] as string;
    if (value.length > MAX_META_VALUE_CHARS) {
      return `meta "${key}" is ${value.length} characters long, over the ${MAX_META_VALUE_CHARS} limit`;
    }
    if (OTHER_CONTROL.test(value)) return `meta "${key}" contains control characters`;
  }
  return null;
}

/**
 * Builds meta from loose values (a JSON line's extra fields, an `EnqueueItem`'s meta): strings as they are
 * (normalized), numbers and booleans as text, null/undefined/empty left out.
 * @returns the meta, or the reason a value cannot be one (an object or array).
 */
export function metaFromValues(
  entries: Iterable<[string, unknown]>,
): { ok: true; meta: Meta } | { ok: false; reason: string } {
  const meta: Meta = {};
  for (const [key, raw] of entries) {
    if (raw === null || raw === undefined) continue;
    let value: string;
    if (typeof raw === 'string') value = normalizeMetaValue(raw);
    else if (typeof raw === 'number' || typeof raw === 'boolean') value = String(raw);
    else {
      const kind = Array.isArray(raw) ? 'an array' : typeof raw === 'object' ? 'an object' : `a ${typeof raw}`;
      return { ok: false, reason: `"${key}" is ${kind}; extra fields (meta) must be strings, numbers or booleans` };
    }
    if (value !== '') meta[key] = value;
  }
  return { ok: true, meta };
}

/** True when `meta` has at least one key. */
export function hasMeta(meta: Readonly<Meta> | undefined | null): meta is Meta {
  return meta !== undefined && meta !== null && Object.keys(meta).length > 0;
}
