/**
 * createTask body validation, per model (KIE_API.md, "Create a task"), with kie-like codes:
 * 422 and a precise message for a wrong request, 500 "This field is required" for a missing `input`
 * (the documented live quirk). Image checks (fetch, type, size) live in the createTask route.
 */
import { ACCEPTED_FORMATS, MAX_OUTPUT_SIDE, type ImageFacts } from './fetch-input.js';
import { SIM_MODELS, SIM_RECRAFT, SIM_TOPAZ, type SimPrices } from './options.js';

export interface CreateRequest {
  model: (typeof SIM_MODELS)[number];
  imageUrl: string;
  /** The topaz factor as sent (a string); null for recraft. */
  factor: string | null;
  callBackUrl: string | null;
  /** The createTask body as JSON: recordInfo's `param`. */
  param: string;
}

export type Checked<T> = { ok: true; value: T } | { ok: false; code: number; msg: string };

const fail = (code: number, msg: string): { ok: false; code: number; msg: string } => ({
  ok: false,
  code,
  msg,
});

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function httpUrl(v: string): boolean {
  try {
    const u = new URL(v);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

function imageField(input: Record<string, unknown>, field: string): Checked<string> {
  const v = input[field];
  if (v === undefined || v === null || v === '') return fail(422, `input.${field} is required`);
  if (typeof v !== 'string') return fail(422, `input.${field} must be a string (got ${typeof v})`);
  if (!httpUrl(v.trim())) return fail(422, `input.${field} must be an http(s) URL`);
  return { ok: true, value: v.trim() };
}

/** Checks a createTask body; `topazFactors` are the factors this simulator accepts. */
export function validateCreateBody(body: unknown, topazFactors: readonly string[]): Checked<CreateRequest> {
  if (!isRecord(body)) return fail(422, 'the request body must be a JSON object');
  const model = body.model;
  if (model === undefined || model === null || model === '') return fail(422, 'model is required');
  if (typeof model !== 'string') return fail(422, 'model must be a string');
  if (!(SIM_MODELS as readonly string[]).includes(model)) {
    return fail(422, `model "${model}" is not supported (use ${SIM_MODELS.join(' or ')})`);
  }
  let callBackUrl: string | null = null;
  if (body.callBackUrl !== undefined && body.callBackUrl !== null && body.callBackUrl !== '') {
    if (typeof body.callBackUrl !== 'string' || !httpUrl(body.callBackUrl))
      return fail(422, 'callBackUrl must be an http(s) URL');
    callBackUrl = body.callBackUrl;
  }
  const input = body.input;
  if (input === undefined || input === null) return fail(500, 'This field is required');
  if (!isRecord(input)) return fail(422, 'input must be an object');
  const param = JSON.stringify(body);
  if (model === SIM_TOPAZ) {
    if (input.image_url === undefined && input.image !== undefined) {
      return fail(422, `${SIM_TOPAZ} takes input.image_url, not input.image`);
    }
    const url = imageField(input, 'image_url');
    if (!url.ok) return url;
    const f = input.upscale_factor;
    let factor = '2';
    if (f !== undefined) {
      const allowed = topazFactors.map((x) => `"${x}"`).join(', ');
      if (typeof f !== 'string')
        return fail(
          422,
          `input.upscale_factor must be a string, one of ${allowed} (got ${typeof f} ${JSON.stringify(f)})`,
        );
      if (!topazFactors.includes(f)) return fail(422, `input.upscale_factor "${f}" is not one of ${allowed}`);
      factor = f;
    }
    return { ok: true, value: { model, imageUrl: url.value, factor, callBackUrl, param } };
  }
  if (input.image_url !== undefined)
    return fail(422, `${SIM_RECRAFT} takes input.image, not input.image_url`);
  if (input.upscale_factor !== undefined) return fail(422, `${SIM_RECRAFT} takes no upscale_factor`);
  const url = imageField(input, 'image');
  if (!url.ok) return url;
  return { ok: true, value: { model: SIM_RECRAFT, imageUrl: url.value, factor: null, callBackUrl, param } };
}

/** How much a task enlarges its input: the topaz factor, ×2 for recraft's crisp upscale. */
export function scaleOf(req: Pick<CreateRequest, 'model' | 'factor'>): number {
  return req.model === SIM_RECRAFT ? 2 : Number(req.factor ?? '2');
}

/** Checks the fetched image against the model's limits; a reason, or null when acceptable. */
export function checkImage(
  facts: ImageFacts | null,
  req: Pick<CreateRequest, 'model' | 'factor'>,
): string | null {
  if (!facts) return 'the input is not an image (only image/jpeg, image/png and image/webp are accepted)';
  if (!Object.hasOwn(ACCEPTED_FORMATS, facts.format)) {
    return `input format ${facts.format} is not supported (only image/jpeg, image/png and image/webp are accepted)`;
  }
  const scale = scaleOf(req);
  const longest = Math.max(facts.width, facts.height);
  if (longest * scale > MAX_OUTPUT_SIDE) {
    return `the output would be ${longest * scale} px on its longest side (${longest} px × ${scale}), over the ${MAX_OUTPUT_SIDE} px limit`;
  }
  return null;
}

/** The price of a task in credits. */
export function priceOf(
  req: Pick<CreateRequest, 'model' | 'factor'>,
  facts: ImageFacts,
  prices: SimPrices,
): number {
  if (req.model === SIM_RECRAFT) return prices.recraft;
  const out = Math.max(facts.width, facts.height) * scaleOf(req);
  if (out <= 2048) return prices.topaz2K;
  if (out <= 4096) return prices.topaz4K;
  return prices.topaz8K;
}
