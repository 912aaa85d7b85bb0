/**
 * What an image costs, from the price table in config (PRICE_TABLE; KIE_API.md's reported prices by default):
 * topaz by the longest side of its output (up to 2048 px: 2K, up to 4096 px: 4K, larger: 8K), recraft a flat price.
 * Without the input's dimensions, topaz is priced at its factor's typical case (an input up to 2048 px:
 * ×1 → 2K, ×2 → 4K, ×4 and ×8 → 8K) and the estimate says it assumed so.
 */
import type { PriceTable } from '../config/index.js';
import { MODELS, RECRAFT, type Factor, type ModelName } from '../kie/models.js';

export interface Price {
  credits: number;
  /** `2K`, `4K`, `8K` for topaz; `flat` for recraft. */
  tier: '2K' | '4K' | '8K' | 'flat';
  /** True when the dimensions were unknown and the tier is the factor's typical case. */
  assumed: boolean;
}

/** The typical input's longest side assumed when the dimensions are unknown. */
export const TYPICAL_INPUT_PX = 2048;

function tierOf(outputLongest: number): '2K' | '4K' | '8K' {
  if (outputLongest <= 2048) return '2K';
  if (outputLongest <= 4096) return '4K';
  return '8K';
}

/** The price of one task of `model` × `factor` for an input of `dims` (null: unknown). */
export function priceOf(
  table: PriceTable,
  model: ModelName,
  factor: Factor | null,
  dims: { width: number | null; height: number | null } | null,
): Price {
  if (model === RECRAFT) return { credits: table.recraft, tier: 'flat', assumed: false };
  const scale = MODELS[model].scaleFor(factor);
  const known = dims !== null && dims.width !== null && dims.height !== null;
  const longest = known ? Math.max(dims.width ?? 0, dims.height ?? 0) : TYPICAL_INPUT_PX;
  const tier = tierOf(longest * scale);
  const credits = tier === '2K' ? table.topaz2K : tier === '4K' ? table.topaz4K : table.topaz8K;
  return { credits, tier, assumed: !known };
}

/** One line of an estimate: the images of one model × factor. */
export interface EstimateRow {
  model: ModelName;
  factor: Factor | null;
  images: number;
  credits: number;
  /** Images priced at the factor's typical case (dimensions unknown). */
  assumed: number;
}

export interface Estimate {
  images: number;
  credits: number;
  rows: EstimateRow[];
  /** Images priced without their dimensions. */
  assumed: number;
}

/** Adds priced images up, one row per model × factor (in first-seen order). */
export class EstimateBuilder {
  private readonly rows = new Map<string, EstimateRow>();

  constructor(private readonly table: PriceTable) {}

  add(model: ModelName, factor: Factor | null, dims: { width: number | null; height: number | null } | null = null): Price {
    const price = priceOf(this.table, model, factor, dims);
    const key = `${model}\n${factor ?? ''}`;
    const row = this.rows.get(key) ?? { model, factor, images: 0, credits: 0, assumed: 0 };
    row.images += 1;
    row.credits += price.credits;
    if (price.assumed) row.assumed += 1;
    this.rows.set(key, row);
    return price;
  }

  result(): Estimate {
    const rows = [...this.rows.values()].map((r) => ({ ...r, credits: round(r.credits) }));
    return {
      images: rows.reduce((n, r) => n + r.images, 0),
      credits: round(rows.reduce((n, r) => n + r.credits, 0)),
      rows,
      assumed: rows.reduce((n, r) => n + r.assumed, 0),
    };
  }
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}
