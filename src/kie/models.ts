/**
 * The model registry: for each supported kie.ai model, its input shape, allowed factors and input limits
 * (KIE_API.md, "Create a task"). Validation answers with a precise reason a person can act on.
 */

export const TOPAZ = 'topaz/image-upscale';
export const RECRAFT = 'recraft/crisp-upscale';
export type ModelName = typeof TOPAZ | typeof RECRAFT;

/** Upscale factor as the API spells it for topaz (a string). `null` for models without a factor. */
export type Factor = '1' | '2' | '4' | '8';

export const ACCEPTED_MIME_TYPES = ['image/jpeg', 'image/png', 'image/webp'] as const;
export type AcceptedMimeType = (typeof ACCEPTED_MIME_TYPES)[number];

/** Input files larger than this are refused by kie.ai. */
export const MAX_INPUT_BYTES = 10 * 1024 * 1024;
/** Longest side of the output (longest input side × factor) may not exceed this. */
export const MAX_OUTPUT_SIDE_PX = 20_000;

export interface ModelSpec {
  readonly name: ModelName;
  /** Allowed factors; empty for a model that takes none. */
  readonly factors: readonly Factor[];
  /** Factor used when none is given. */
  readonly defaultFactor: Factor | null;
  /**
   * The output's enlargement relative to the input, for the 20,000 px check and for expected output size.
   * For topaz it is the factor; recraft's crisp upscale has no factor and is treated as ×2 by the registry
   * (the simulator enlarges it by the same ×2).
   */
  scaleFor(factor: Factor | null): number;
  /** Builds the `input` object of createTask. */
  buildInput(imageUrl: string, factor: Factor | null): Record<string, string>;
}

const topaz: ModelSpec = {
  name: TOPAZ,
  factors: ['1', '2', '4', '8'],
  defaultFactor: '2',
  scaleFor: (factor) => Number(factor ?? '2'),
  buildInput: (imageUrl, factor) => ({ image_url: imageUrl, upscale_factor: factor ?? '2' }),
};

const recraft: ModelSpec = {
  name: RECRAFT,
  factors: [],
  defaultFactor: null,
  scaleFor: () => 2,
  buildInput: (imageUrl) => ({ image: imageUrl }),
};

export const MODELS: Readonly<Record<ModelName, ModelSpec>> = Object.freeze({ [TOPAZ]: topaz, [RECRAFT]: recraft });
export const MODEL_NAMES = Object.keys(MODELS) as ModelName[];

export function isModelName(name: string): name is ModelName {
  return Object.hasOwn(MODELS, name);
}

/** The outcome of checking a model/factor pair: the normalised pair, or a reason and which of the two it is about. */
export type ModelChoice =
  | { ok: true; model: ModelName; factor: Factor | null }
  | { ok: false; field: 'model' | 'factor'; reason: string };

/** How `resolveModel` starts its refusal of an item that names no model (and was given no default). */
export const NO_MODEL_GIVEN = 'no model given';

/**
 * Checks a model name and an optional factor (number or string, as users write it) against the registry.
 * For topaz a missing factor means the default ("2"); recraft takes no factor at all.
 */
export function resolveModel(model: string | undefined, factor: string | number | undefined | null): ModelChoice {
  if (model === undefined || model.trim() === '') {
    return { ok: false, field: 'model', reason: `${NO_MODEL_GIVEN}; use one of ${MODEL_NAMES.join(', ')}` };
  }
  const name = model.trim();
  if (!isModelName(name)) return { ok: false, field: 'model', reason: `unknown model "${name}"; use one of ${MODEL_NAMES.join(', ')}` };
  const spec = MODELS[name];
  const given = factor === undefined || factor === null ? '' : String(factor).trim();
  if (spec.factors.length === 0) {
    if (given !== '') return { ok: false, field: 'factor', reason: `${name} takes no factor (got ${given})` };
    return { ok: true, model: name, factor: null };
  }
  if (given === '') return { ok: true, model: name, factor: spec.defaultFactor };
  const normalised = /^\d+(\.0+)?$/.test(given) ? String(Number(given)) : given;
  if (!(spec.factors as readonly string[]).includes(normalised)) {
    return { ok: false, field: 'factor', reason: `factor ${given} is not one of ${spec.factors.join(', ')} for ${name}` };
  }
  return { ok: true, model: name, factor: normalised as Factor };
}

/**
 * Checks what is known of an input image against kie.ai's input limits (the one place that knows them; the
 * pre-flight check calls it). Unknown size or dimensions (null) are not judged. Returns a reason, or null.
 */
export function checkImageLimits(
  image: { mimeType: string; bytes: number | null; width: number | null; height: number | null },
  model: ModelName,
  factor: Factor | null,
): string | null {
  if (!(ACCEPTED_MIME_TYPES as readonly string[]).includes(image.mimeType)) {
    return `format ${image.mimeType} is not accepted (only JPEG, PNG and WebP)`;
  }
  if (image.bytes !== null && image.bytes > MAX_INPUT_BYTES) {
    return `file is ${(image.bytes / 1024 / 1024).toFixed(1)} MB, over kie.ai's 10 MB input limit`;
  }
  if (image.width === null || image.height === null) return null;
  const scale = MODELS[model].scaleFor(factor);
  const longest = Math.max(image.width, image.height);
  if (longest * scale > MAX_OUTPUT_SIDE_PX) {
    return `output would be ${longest * scale} px on its longest side (${image.width}×${image.height} × ${scale}), over kie.ai's ${MAX_OUTPUT_SIDE_PX.toLocaleString('en-US')} px cap`;
  }
  return null;
}
