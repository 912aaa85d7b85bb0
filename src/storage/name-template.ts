/**
 * OUTPUT_NAME: the template that names each stored result, relative to OUTPUT_URL. Pure (no I/O): the producer
 * checks every line against it at enqueue, the download lane renders it once the result is known.
 *
 * Syntax: literal text and `{field}`; `/` separates folders. Fields:
 * - `{batchId}`, `{jobId}`, `{line}` (line of the input file), `{name}` (input file name without extension),
 *   `{model}` (`/` becomes `-`: `topaz-image-upscale`), `{factor}` (the scale: recraft is 2);
 * - `{ext}` (the result's real format: `jpg`, `png`, `webp`...), `{width}` / `{w}`, `{height}` / `{h}` (the result's
 *   pixel size): known only once the result is downloaded;
 * - any extra column of the input line (`{sku}`), kept in the record as `meta` (matched exactly, else ignoring case).
 *
 * Every value is made safe as one path segment: characters other than ASCII letters, digits, `_`, `.`, `-` become
 * `_`, leading dots are removed, at most 80 characters are kept. So no value can add a folder or climb out of
 * OUTPUT_URL; only the template's own `/` make folders. An extra column holding a `..` path part is refused (path
 * traversal) rather than quietly renamed. A built-in field that is empty (`{name}` of a URL ending
 * in `/`, `{line}` of an item without one) drops one `-`, `_` or `.` written just before it, so the default
 * `{batchId}/{jobId}-{name}.{ext}` is exactly the layout of OUTPUT_DIR before templates. An empty or missing extra
 * column refuses the line.
 *
 * The template's literal text may hold only ASCII letters and digits, `-`, `_`, `.`, `=` and `/` (the same in a
 * file name, an S3 key and a URL, so `outputUrl` needs no escaping): `?`, `#`, `%`, spaces, `*<>|:"`, non-ASCII
 * letters are refused when the template is read, naming them.
 *
 * Names the tool keeps for itself are refused: any folder or file name starting with `.` (thumbnails live under
 * `<batchId>/.thumbs/`, temp files are `.<name>.<hex>.part`) and `<batchId>/results.jsonl` / `<batchId>/summary.json`
 * (the finalizer's files, {@link BATCH_FILES}).
 */
import { basename, extname } from 'node:path';
import { MODELS, type Factor, type ModelName } from '../kie/models.js';

/** @defaultValue of OUTPUT_NAME: the OUTPUT_DIR layout (`<batchId>/<jobId>-<input name>.<ext>`). */
export const DEFAULT_OUTPUT_NAME = '{batchId}/{jobId}-{name}.{ext}';

export const BUILTIN_FIELDS = ['batchId', 'jobId', 'line', 'name', 'model', 'factor', 'ext', 'width', 'height'] as const;
export type BuiltinField = (typeof BUILTIN_FIELDS)[number];
const ALIASES: Readonly<Record<string, BuiltinField>> = { w: 'width', h: 'height' };
/** Fields known only once the result is downloaded. */
export const RESULT_FIELDS: readonly BuiltinField[] = ['ext', 'width', 'height'];

/** The files the finalizer writes into `<batchId>/` beside the results (src/batch/finalizer.ts). */
export const BATCH_FILES = ['results.jsonl', 'summary.json'] as const;

/** Longest template accepted, in characters. */
export const MAX_TEMPLATE_CHARS = 512;
/** Longest rendered name, in UTF-8 bytes (S3 allows 1024 for the whole key, OUTPUT_URL's prefix included). */
export const MAX_NAME_BYTES = 900;
/** Longest folder or file name, in UTF-8 bytes (the usual file system limit). */
export const MAX_SEGMENT_BYTES = 255;
/** Longest value a field contributes, in characters. */
export const MAX_VALUE_CHARS = 80;

type Part = { text: string } | { field: string; builtin: BuiltinField | null };

export interface NameTemplate {
  /** The template as written. */
  readonly source: string;
  readonly parts: readonly Part[];
  /** Extra-column fields it uses (as written). */
  readonly metaFields: readonly string[];
  /**
   * Whether two images can get the same name: false when `{jobId}` is in it (an image's id is unique in a
   * batch), so the producer need not keep the names to compare.
   */
  readonly canCollide: boolean;
}

/** A template that cannot be used; `problems` lists every reason. */
export class TemplateError extends Error {
  override readonly name = 'TemplateError';
  constructor(
    readonly source: string,
    readonly problems: readonly string[],
  ) {
    super(`OUTPUT_NAME "${source}" ${problems.join('; ')}`);
  }
}

/** One character allowed in a template's literal text: ASCII letters and digits, `-`, `_`, `.`, `=`, and `/`. */
const LITERAL_SAFE = /^[A-Za-z0-9\-_.=/]$/;
const LITERAL_SAFE_TEXT = 'ASCII letters and digits, "-", "_", ".", "=" and "/" for folders';

// eslint-disable-next-line no-control-regex -- refusing control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Parses and checks a template; throws `TemplateError` listing every problem. */
export function parseNameTemplate(source: string): NameTemplate {
  const problems: string[] = [];
  const parts: Part[] = [];
  if (source.trim() === '') problems.push('is empty');
  if (source.length > MAX_TEMPLATE_CHARS) problems.push(`is ${source.length} characters long, over ${MAX_TEMPLATE_CHARS}`);
  if (CONTROL.test(source)) problems.push('contains a control character');
  if (source.includes('\\')) problems.push('contains "\\" (use "/" for folders)');
  if (source.startsWith('/')) problems.push('starts with "/" (names are relative to OUTPUT_URL)');
  if (source.endsWith('/')) problems.push('ends with "/" (the last part is the file name)');
  if (source.includes('//')) problems.push('has an empty folder name ("//")');
  const re = /\{([^{}]*)\}|([^{}]+)|([{}])/g;
  for (let m = re.exec(source); m !== null; m = re.exec(source)) {
    if (m[3] !== undefined) {
      problems.push(`has an unmatched "${m[3]}" at character ${m.index + 1}`);
    } else if (m[2] !== undefined) {
      parts.push({ text: m[2] });
    } else {
      const field = (m[1] ?? '').trim();
      if (field === '') {
        problems.push(`has an empty field "{}" at character ${m.index + 1}`);
        continue;
      }
      const builtin = (BUILTIN_FIELDS as readonly string[]).includes(field) ? (field as BuiltinField) : (ALIASES[field] ?? null);
      parts.push({ field, builtin });
    }
  }
  // Literal text: only characters that are the same in a file name, an S3 key and a URL (values are made safe
  // when rendered; the template's own text is the author's, so it is refused rather than quietly changed).
  // (control characters and "\\" have their own message above)
  const unsafe = [...new Set(parts.flatMap((p) => ('text' in p ? [...p.text].filter((c) => !LITERAL_SAFE.test(c) && !CONTROL.test(c) && c !== '\\') : [])))];
  if (unsafe.length > 0) {
    problems.push(`has ${unsafe.map((c) => JSON.stringify(c)).join(' ')} in its literal text (allowed: ${LITERAL_SAFE_TEXT})`);
  }
  // Folders spelled out in the template: '.' and '..' climb out of OUTPUT_URL.
  for (const segment of literalSegments(parts)) {
    if (segment === '.' || segment === '..') problems.push(`has a "${segment}" folder (path traversal)`);
    else if (segment.startsWith('.')) problems.push(`has a name starting with "." ("${segment}"; such names are the tool's own: thumbnails, temp files)`);
  }
  // `{batchId}/results.jsonl`: every image would be named as the batch's own file, whatever the line holds.
  const [folder, file, ...deeper] = splitSegments(parts);
  if (deeper.length === 0 && folder?.length === 1 && file !== undefined) {
    const only = folder[0] as Part;
    const fileText = file.every((p) => 'text' in p) ? file.map((p) => (p).text).join('') : null;
    const batchFile = BATCH_FILES.find((f) => fileText !== null && collisionKey(fileText) === f);
    if ('field' in only && only.builtin === 'batchId' && batchFile !== undefined) {
      problems.push(`names every image "{batchId}/${fileText}", the batch's own ${batchFile} (written when the batch finishes)`);
    }
  }
  if (problems.length > 0) throw new TemplateError(source, problems);
  const metaFields = [...new Set(parts.flatMap((p) => ('field' in p && p.builtin === null ? [p.field] : [])))];
  const canCollide = !parts.some((p) => 'field' in p && p.builtin === 'jobId');
  return Object.freeze({ source, parts: Object.freeze(parts), metaFields: Object.freeze(metaFields), canCollide });
}

/** The template's parts split at its literal `/`: one list of parts per folder or file name. */
function splitSegments(parts: readonly Part[]): Part[][] {
  const out: Part[][] = [[]];
  for (const p of parts) {
    if (!('text' in p)) {
      (out[out.length - 1] as Part[]).push(p);
      continue;
    }
    p.text.split('/').forEach((piece, i) => {
      if (i > 0) out.push([]);
      if (piece !== '') (out[out.length - 1] as Part[]).push({ text: piece });
    });
  }
  return out;
}

/** Segments made only of literal text (a segment with a field in it is checked once rendered). */
function literalSegments(parts: readonly Part[]): string[] {
  const out: string[] = [];
  let current = '';
  let literal = true;
  const flush = () => {
    if (literal) out.push(current);
    current = '';
    literal = true;
  };
  for (const p of parts) {
    if ('text' in p) {
      const pieces = p.text.split('/');
      pieces.forEach((piece, i) => {
        if (i > 0) flush();
        current += piece;
      });
    } else literal = false;
  }
  flush();
  return out;
}

/** What a name is made of: the image's record, and the result once it is known. */
export interface NameValues {
  batchId: string;
  jobId: string;
  line: number | null;
  input: string;
  model: ModelName;
  factor: Factor | null;
  meta?: Readonly<Record<string, string>> | undefined;
  /** The result's format as a file extension without the dot (`jpg`); unknown at enqueue. */
  ext?: string;
  width?: number;
  height?: number;
}

export type Rendered = { ok: true; name: string } | { ok: false; reason: string };

/** Makes `value` safe as (part of) one path segment. */
export function safeValue(value: string): string {
  return value.replace(/[^\w.-]+/g, '_').replace(/^[.]+/, '').slice(0, MAX_VALUE_CHARS);
}

/** The input's file name without extension (a URL's last path segment, decoded), made safe; may be empty. */
export function inputName(input: string): string {
  let name: string;
  try {
    name = /^https?:/i.test(input) ? decodeURIComponent(basename(new URL(input).pathname)) : basename(input);
  } catch {
    name = basename(input);
  }
  return safeValue(name.slice(0, name.length - extname(name).length));
}

/** Stand-ins for the result fields at enqueue: as long as a real value can be, and unlike any real one. */
const UNKNOWN: Readonly<Record<string, string>> = { ext: '\u0000ext\u0000', width: '\u0000width\u0000', height: '\u0000height\u0000' };
const UNKNOWN_BYTES: Readonly<Record<string, number>> = { ext: 4, width: 5, height: 5 };

function builtinValue(field: BuiltinField, v: NameValues, placeholders: boolean): string {
  switch (field) {
    case 'batchId':
      return safeValue(v.batchId);
    case 'jobId':
      return safeValue(v.jobId);
    case 'line':
      return v.line === null ? '' : String(v.line);
    case 'name':
      return inputName(v.input);
    case 'model':
      return safeValue(v.model.replace(/\//g, '-'));
    case 'factor':
      return String(MODELS[v.model].scaleFor(v.factor));
    case 'ext':
      return v.ext !== undefined ? safeValue(v.ext) : placeholders ? (UNKNOWN.ext as string) : '';
    case 'width':
      return v.width !== undefined ? String(v.width) : placeholders ? (UNKNOWN.width as string) : '';
    case 'height':
      return v.height !== undefined ? String(v.height) : placeholders ? (UNKNOWN.height as string) : '';
  }
}

function metaValue(meta: NameValues['meta'], field: string): string | undefined {
  if (!meta) return undefined;
  if (Object.hasOwn(meta, field)) return meta[field];
  const lower = field.toLowerCase();
  const matches = Object.keys(meta).filter((k) => k.toLowerCase() === lower);
  return matches.length === 1 ? meta[matches[0] as string] : undefined;
}

const byteLength = (s: string) => Buffer.byteLength(s, 'utf8');

/**
 * Renders the name of an image's result. Without the result fields (`ext`, `width`, `height`), `placeholders`
 * puts stand-ins in their place (the producer's check); otherwise their absence is an error. Fails with a reason
 * naming the field for a missing or empty extra column, an empty folder or file name, or a name too long.
 */
export function renderName(t: NameTemplate, v: NameValues, options: { placeholders?: boolean } = {}): Rendered {
  const placeholders = options.placeholders ?? false;
  let out = '';
  let unknownBytes = 0;
  for (const p of t.parts) {
    if ('text' in p) {
      out += p.text;
      continue;
    }
    if (p.builtin === null) {
      const raw = metaValue(v.meta, p.field);
      if (raw === undefined) {
        const known = [...BUILTIN_FIELDS, ...Object.keys(ALIASES)].map((f) => `{${f}}`).join(' ');
        return { ok: false, reason: `OUTPUT_NAME uses {${p.field}}: not a built-in field (${known}) and this line has no "${p.field}" value (no such column, or it is empty)` };
      }
      if (raw.split(/[\\/]/).some((s) => s.trim() === '..')) {
        return { ok: false, reason: `{${p.field}} is "${raw.slice(0, 80)}" on this line: ".." would climb out of OUTPUT_URL (path traversal)` };
      }
      const value = safeValue(raw.trim());
      if (value === '' && raw.trim() !== '') {
        return {
          ok: false,
          reason: `{${p.field}} is "${raw.trim().slice(0, 80)}" on this line: nothing of it is usable in a name (leading dots are dropped; other characters than letters, digits, "_", "." and "-" become "_")`,
        };
      }
      if (value === '') return { ok: false, reason: `OUTPUT_NAME uses {${p.field}}, which is empty on this line` };
      out += value;
      continue;
    }
    if (!placeholders && RESULT_FIELDS.includes(p.builtin) && v[p.builtin as 'ext' | 'width' | 'height'] === undefined) {
      return { ok: false, reason: `{${p.field}} is not known yet` };
    }
    const value = builtinValue(p.builtin, v, placeholders);
    if (value === '') {
      if (/[-_.]$/.test(out) && !out.endsWith('/')) out = out.slice(0, -1);
      continue;
    }
    if (placeholders && value === UNKNOWN[p.builtin]) unknownBytes += (UNKNOWN_BYTES[p.builtin] ?? 0) - byteLength(value);
    out += value;
  }
  const segments = out.split('/');
  for (const s of segments) {
    if (s === '' || s === '.' || s === '..') {
      return { ok: false, reason: `OUTPUT_NAME "${t.source}" gives an empty folder or file name here ("${printable(out)}")` };
    }
    if (s.startsWith('.')) {
      return { ok: false, reason: `the output name "${printable(out)}" has a part starting with "." (such names are the tool's own: thumbnails, temp files)` };
    }
    if (byteLength(s) > MAX_SEGMENT_BYTES) {
      return { ok: false, reason: `the output name "${printable(out)}" has a part over ${MAX_SEGMENT_BYTES} bytes` };
    }
  }
  const batchFile = BATCH_FILES.find((f) => collisionKey(out) === collisionKey(`${v.batchId}/${f}`));
  if (batchFile !== undefined) {
    return { ok: false, reason: `the output name "${printable(out)}" is the batch's own ${batchFile} (written when the batch finishes)` };
  }
  if (byteLength(out) + unknownBytes > MAX_NAME_BYTES) {
    return { ok: false, reason: `the output name would be over ${MAX_NAME_BYTES} bytes` };
  }
  return { ok: true, name: out };
}

/** A rendered name with the enqueue stand-ins shown as `{ext}`, `{width}`, `{height}`. */
export function printable(name: string): string {
  // eslint-disable-next-line no-control-regex -- the stand-ins are delimited by NUL
  return name.replace(/\u0000(\w+)\u0000/g, '{$1}');
}

/**
 * The form in which two names are compared for collisions: case-folded (a case-insensitive disk or a sync tool
 * would store `A.jpg` and `a.jpg` as one file), with the unknown result fields treated as equal.
 */
export function collisionKey(name: string): string {
  return name.normalize('NFC').toLowerCase();
}

/** The name of the n-th result (0-based) of one task: `-2`, `-3`... before the extension of the later ones. */
export function nthResultName(name: string, index: number): string {
  if (index === 0) return name;
  const slash = name.lastIndexOf('/');
  const dot = name.lastIndexOf('.');
  return dot > slash + 1 ? `${name.slice(0, dot)}-${index + 1}${name.slice(dot)}` : `${name}-${index + 1}`;
}
