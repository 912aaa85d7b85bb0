/** What `upscale estimate` runs once its flags are checked (src/cli/commands/estimate.ts). Loaded only when it runs. */
import { loadConfig } from '../../config/index.js';
import { checkEnqueueOptions, checkInputFile, isInputError, parseInput, type ParsedLine } from '../../producer/index.js';
import { estimateLines, type EstimateReport } from '../../worker/estimate.js';
import { modelFlagNeeded, UsageError } from '../usage-error.js';
import type { EstimateCliOptions } from '../commands/estimate.js';

export function renderEstimate(r: EstimateReport): string {
  const rows = r.rows.map((row) => [row.model, row.factor ?? '-', String(row.images), fmt(row.credits), row.assumed > 0 ? '*' : '']);
  const table = [['model', 'factor', 'images', 'credits', ''], ...rows, ['total', '', String(r.images), fmt(r.credits), '']];
  const widths = [0, 1, 2, 3].map((i) => Math.max(...table.map((t) => (t[i] ?? '').length)));
  const lines = table.map((t) => t.map((c, i) => (i === 2 || i === 3 ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd());
  if (r.assumption) lines.push(`* ${r.assumed} image${r.assumed === 1 ? '' : 's'}: ${r.assumption}`);
  lines.push(`prices (PRICE_TABLE): topaz 2K ${fmt(r.prices.topaz2K)}, 4K ${fmt(r.prices.topaz4K)}, 8K ${fmt(r.prices.topaz8K)}; recraft ${fmt(r.prices.recraft)} credits`);
  if (r.rejected.length > 0) lines.push(`${r.rejected.length} line${r.rejected.length === 1 ? '' : 's'} not counted (see stderr)`);
  return lines.join('\n') + '\n';
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(2).replace(/0$/, '');
}

export async function runEstimate(file: string | undefined, opts: EstimateCliOptions): Promise<void> {
  try {
    checkEnqueueOptions({ ...(opts.model === undefined ? {} : { model: opts.model }), ...(opts.factor === undefined ? {} : { factor: opts.factor }) });
  } catch (e) {
    // "model: …" / "factor: …": named by its flag, as enqueue does.
    if (isInputError(e)) throw new UsageError(`--${(e as Error).message}`);
    throw e;
  }
  try {
    if (file !== undefined && file !== '-') await checkInputFile(file);
  } catch (e) {
    if (isInputError(e)) throw new UsageError((e as Error).message);
    throw e;
  }
  const config = loadConfig();
  async function* lines(): AsyncGenerator<ParsedLine> {
    let last = 0;
    if (file !== undefined) {
      for await (const p of parseInput(file, undefined, opts.encoding ? { encoding: opts.encoding } : {})) {
        last = p.line;
        yield p;
      }
    }
    for (const [i, url] of opts.url.entries()) yield { line: last + i + 1, input: url };
  }
  const report = await estimateLines(lines(), {
    prices: config.priceTable,
    allowPrivateUrls: config.allowPrivateUrls,
    defaultModel: opts.model,
    defaultFactor: opts.factor,
    probe: opts.probe ?? false,
  }).catch((e: unknown) => {
    throw isInputError(e) ? new UsageError((e as Error).message) : e;
  });
  const noModel = modelFlagNeeded(opts.model, report.images, report.rejected);
  if (noModel) throw noModel;
  for (const r of report.rejected) process.stderr.write(`line ${r.line}: ${r.input}: ${r.reason}\n`);
  process.stdout.write(opts.json ? JSON.stringify(report) + '\n' : renderEstimate(report));
}
