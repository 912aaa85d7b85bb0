/**
 * `upscale estimate`: how many images an input holds and what they would cost, before anything is enqueued.
 * Lines are validated as the producer does; with `probe`, each image's head is read (the pre-flight) so topaz is
 * priced by the real output size and images that would fail are counted out. Without it, topaz is priced at its
 * factor's typical case (see prices.ts) and the report says so.
 */
import type { PriceTable } from '../config/index.js';
import { validateLine } from '../producer/validate.js';
import { displayInput, type ParsedLine, type Rejection } from '../producer/types.js';
import { checkLines } from './check-lines.js';
import type { PreflightOptions } from './preflight.js';
import { EstimateBuilder, TYPICAL_INPUT_PX, type Estimate } from './prices.js';

export interface EstimateReport extends Estimate {
  /** Lines that are not images (or, with probe, images that would fail the pre-flight). */
  rejected: Rejection[];
  probed: boolean;
  prices: PriceTable;
  /** What was assumed for images without known dimensions; null when nothing was. */
  assumption: string | null;
}

export interface EstimateOptions {
  prices: PriceTable;
  allowPrivateUrls: boolean;
  defaultModel?: string | undefined;
  defaultFactor?: string | number | undefined;
  /** Read each image's head for its dimensions (network or disk per image). @defaultValue false */
  probe?: boolean;
  /** Seams of the probe's fetch (tests). */
  preflight?: Omit<PreflightOptions, 'allowPrivate'>;
  /** Probes running at once. @defaultValue 8 */
  concurrency?: number;
  cwd?: string;
}

export const ASSUMPTION = `topaz priced for inputs up to ${TYPICAL_INPUT_PX} px (×1 → 2K, ×2 → 4K, ×4 and ×8 → 8K) because the dimensions are unknown; --probe reads them`;

export async function estimateLines(
  lines: AsyncIterable<ParsedLine> | Iterable<ParsedLine>,
  opts: EstimateOptions,
): Promise<EstimateReport> {
  const builder = new EstimateBuilder(opts.prices);
  const rejected: Rejection[] = [];
  const reject = (p: ParsedLine, reason: string) => rejected.push({ line: p.line, input: displayInput(p.input), reason });
  const cwd = opts.cwd ?? process.cwd();
  if (opts.probe) {
    const checked = checkLines(lines, {
      cwd,
      defaultModel: opts.defaultModel,
      defaultFactor: opts.defaultFactor,
      preflight: { ...opts.preflight, allowPrivate: opts.allowPrivateUrls },
      ...(opts.concurrency === undefined ? {} : { concurrency: opts.concurrency }),
    });
    for await (const c of checked) {
      if (c.image === null || c.reason !== undefined) reject(c.parsed, c.reason ?? 'invalid');
      else builder.add(c.image.model, c.image.factor, c.facts);
    }
  } else {
    const ctx = { cwd, allowPrivateUrls: opts.allowPrivateUrls, defaultModel: opts.defaultModel, defaultFactor: opts.defaultFactor };
    for await (const p of lines) {
      const v = await validateLine(p, ctx);
      if (v.ok) builder.add(v.image.model, v.image.factor, null);
      else rejected.push(v.rejection);
    }
  }
  const estimate = builder.result();
  return { ...estimate, rejected, probed: opts.probe ?? false, prices: opts.prices, assumption: estimate.assumed > 0 ? ASSUMPTION : null };
}
