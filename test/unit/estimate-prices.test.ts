import { describe, expect, it } from 'vitest';
import { DEFAULT_PRICES, loadConfig } from '../../src/config/index.js';
import { EstimateBuilder, priceOf } from '../../src/worker/prices.js';

const TOPAZ = 'topaz/image-upscale';
const RECRAFT = 'recraft/crisp-upscale';

describe('priceOf', () => {
  it('prices topaz by the longest output side', () => {
    expect(priceOf(DEFAULT_PRICES, TOPAZ, '2', { width: 1024, height: 700 })).toEqual({ credits: 10, tier: '2K', assumed: false });
    expect(priceOf(DEFAULT_PRICES, TOPAZ, '2', { width: 1025, height: 700 })).toMatchObject({ credits: 20, tier: '4K' });
    expect(priceOf(DEFAULT_PRICES, TOPAZ, '4', { width: 700, height: 1025 })).toMatchObject({ credits: 40, tier: '8K' });
    expect(priceOf(DEFAULT_PRICES, RECRAFT, null, { width: 5000, height: 5000 })).toEqual({ credits: 0.5, tier: 'flat', assumed: false });
  });

  it("assumes the factor's typical case without dimensions", () => {
    expect(priceOf(DEFAULT_PRICES, TOPAZ, '1', null)).toEqual({ credits: 10, tier: '2K', assumed: true });
    expect(priceOf(DEFAULT_PRICES, TOPAZ, '2', null)).toMatchObject({ credits: 20, tier: '4K', assumed: true });
    expect(priceOf(DEFAULT_PRICES, TOPAZ, '4', { width: null, height: null })).toMatchObject({ credits: 40, assumed: true });
    expect(priceOf(DEFAULT_PRICES, TOPAZ, '8', null)).toMatchObject({ credits: 40, tier: '8K' });
  });

  it('takes PRICE_TABLE overrides from config', () => {
    const table = loadConfig({ PRICE_TABLE: '{"topaz4K": 25, "recraft": 1}' }).priceTable;
    expect(table).toEqual({ topaz2K: 10, topaz4K: 25, topaz8K: 40, recraft: 1 });
    expect(priceOf(table, TOPAZ, '2', null).credits).toBe(25);
    expect(() => loadConfig({ PRICE_TABLE: '{"topaz":1}' })).toThrow(/PRICE_TABLE.*Unrecognized key/);
    expect(() => loadConfig({ PRICE_TABLE: '[1' })).toThrow(/PRICE_TABLE.*not JSON/);
  });
});

describe('EstimateBuilder', () => {
  it('adds up one row per model × factor', () => {
    const b = new EstimateBuilder(DEFAULT_PRICES);
    b.add(TOPAZ, '2');
    b.add(TOPAZ, '2', { width: 500, height: 500 });
    b.add(RECRAFT, null);
    b.add(RECRAFT, null);
    b.add(RECRAFT, null);
    expect(b.result()).toEqual({
      images: 5,
      credits: 31.5,
      assumed: 1,
      rows: [
        { model: TOPAZ, factor: '2', images: 2, credits: 30, assumed: 1 },
        { model: RECRAFT, factor: null, images: 3, credits: 1.5, assumed: 0 },
      ],
    });
  });
});
