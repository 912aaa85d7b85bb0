/**
 * Validation of one parsed line before anything is enqueued for it: the input (an http(s) URL, a local path or a
 * file:// URL), the host policy, and the model/factor pair through the model registry. URLs are checked
 * synchronously; only local paths need the file system, so only they return a promise.
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  isModelName,
  MAX_INPUT_BYTES,
  MODELS,
  resolveModel,
  type Factor,
  type ModelName,
} from '../kie/models.js';
import { literalHostPolicy } from './address-policy.js';
import { expiryProblem } from './expiry.js';
import { inputUrl } from './input-url.js';
import { lineProblem } from './lines.js';
import { hasMeta, metaProblem, type Meta } from './meta.js';
import { displayInput, MAX_LINE_CHARS, type ParsedLine, type Rejection } from './types.js';

export interface ValidateContext {
  /** Relative paths are resolved against this. */
  cwd: string;
  allowPrivateUrls: boolean;
  defaultModel?: string | undefined;
  defaultFactor?: string | number | undefined;
  /** The clock expiring links are judged by (Unix ms). @defaultValue `Date.now` */
  now?: () => number;
}

/** An image ready to enqueue: the input as stored (URLs as given, local files as absolute paths). */
export interface ValidImage {
  line: number;
  /** The input as used: a URL encoded once when it was not valid as written (input-url.ts), or an absolute path. */
  input: string;
  /** The URL as written, when `input` is its encoded form. */
  originalInput?: string;
  model: ModelName;
  factor: Factor | null;
  /** Extra columns or fields, checked against the bounds of meta.ts; absent when there are none. */
  meta?: Meta;
}

export type Validation = { ok: true; image: ValidImage } | { ok: false; rejection: Rejection };

const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):/;

type InputCheck =
  | { kind: 'url'; input: string; original?: string } | { kind: 'path'; path: string } | { kind: 'bad'; reason: string };

/**
 * Classifies and checks an input without touching the file system. An http(s) URL comes back in the form it is
 * used in (`input-url.ts`: encoded once when not valid as written, with the `original`); a presigned URL that
 * expired before `now` (Unix ms) is refused.
 */
export function checkInput(input: string, cwd: string, allowPrivateUrls: boolean, now = Date.now()): InputCheck {
  if (input === '') return { kind: 'bad', reason: 'empty input' };
  if (input.length > MAX_LINE_CHARS) {
    return {
      kind: 'bad',
      reason: `input is ${input.length} characters long, over the ${MAX_LINE_CHARS} limit`,
    };
  }
  const problem = lineProblem(input);
  if (problem !== undefined) return { kind: 'bad', reason: problem };
  if (input.startsWith('//')) {
    return { kind: 'bad', reason: `relative URL without a scheme; write it as https:${input}` };
  }
  const scheme = SCHEME.exec(input)?.[1]?.toLowerCase();
  if (scheme === undefined) return { kind: 'path', path: resolve(cwd, input) };
  if (scheme === 'http' || scheme === 'https') {
    const checked = inputUrl(input);
    if (!checked.ok) return { kind: 'bad', reason: checked.reason };
    const policy = literalHostPolicy(checked.url, allowPrivateUrls);
    if (policy !== null) return { kind: 'bad', reason: policy };
    const expiry = expiryProblem(checked.url, now);
    if (expiry !== null) return { kind: 'bad', reason: expiry };
    return checked.original === undefined
      ? { kind: 'url', input: checked.url }
      : { kind: 'url', input: checked.url, original: checked.original };
  }
  if (scheme === 'file') {
    try {
      return { kind: 'path', path: fileURLToPath(input) };
    } catch (e) {
      return { kind: 'bad', reason: `file URL is not a local path (${(e as Error).message})` };
    }
  }
  return { kind: 'bad', reason: `unsupported scheme "${scheme}:"; use an http(s) URL or a local file path` };
}

/** Checks a local file: it exists, is a regular file, can be read and is not over kie.ai's input limit. */
export async function checkLocalFile(path: string): Promise<string | null> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      return `no such file: ${path} (a URL needs http:// or https://)`;
    }
    return `${path} cannot be read (${code ?? (e as Error).message})`;
  }
  if (st.isDirectory()) return `${path} is a directory`;
  if (!st.isFile()) return `${path} is not a regular file`;
  try {
    await access(path, constants.R_OK);
  } catch (e) {
    return `${path} is not readable (${(e as NodeJS.ErrnoException).code ?? 'access denied'})`;
  }
  if (st.size === 0) return `${path} is empty (0 bytes)`;
  if (st.size > MAX_INPUT_BYTES) {
    return `${path} is ${(st.size / 1024 / 1024).toFixed(1)} MB, over kie.ai's 10 MB input limit`;
  }
  return null;
}

/** The factor a line gets: its own, else the default when its model takes one. */
function factorFor(
  model: string | undefined,
  own: string | number | undefined,
  fallback: string | number | undefined,
) {
  if (own !== undefined && String(own).trim() !== '') return own;
  if (fallback === undefined || model === undefined) return undefined;
  const name = model.trim();
  return isModelName(name) && MODELS[name].factors.length === 0 ? undefined : fallback;
}

/** Validates one parsed line. Synchronous for URLs and rejections; a promise for local files. */
export function validateLine(p: ParsedLine, ctx: ValidateContext): Validation | Promise<Validation> {
  const reject = (reason: string): Validation => ({
    ok: false,
    rejection: { line: p.line, input: displayInput(p.input), reason },
  });
  if (p.reason !== undefined) return reject(p.reason);
  const checked = checkInput(p.input.trim(), ctx.cwd, ctx.allowPrivateUrls, (ctx.now ?? Date.now)());
  if (checked.kind === 'bad') return reject(checked.reason);
  const model = p.model !== undefined && p.model.trim() !== '' ? p.model : ctx.defaultModel;
  const choice = resolveModel(model, factorFor(model, p.factor, ctx.defaultFactor));
  if (!choice.ok) return reject(choice.reason);
  const meta = p.meta !== undefined && hasMeta(p.meta) ? p.meta : undefined;
  const badMeta = meta ? metaProblem(meta) : null;
  if (badMeta !== null) return reject(badMeta);
  const image = (input: string, originalInput?: string): Validation => ({
    ok: true,
    image: {
      line: p.line,
      input,
      ...(originalInput === undefined ? {} : { originalInput }),
      model: choice.model,
      factor: choice.factor,
      ...(meta ? { meta } : {}),
    },
  });
  if (checked.kind === 'url') return image(checked.input, checked.original);
  const path = checked.path;
  return checkLocalFile(path).then((reason) => (reason === null ? image(path) : reject(reason)));
}
