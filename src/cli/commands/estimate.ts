/**
 * `upscale estimate FILE [--url URL]... [--model M] [--factor F] [--probe] [--json]`: counts the images of an input
 * (the same formats and validation as `upscale enqueue`) and estimates their credits from PRICE_TABLE. Nothing is
 * enqueued and Redis is not needed. `--probe` reads each image's head (as the submit lane's pre-flight does) to
 * price topaz by the real output size and to count out images that would fail.
 *
 * - stdout: a table (model, factor, images, credits) and the total; `--json`: `{ images, credits, rows, assumed,
 *   assumption, probed, prices, rejected: [{ line, input, reason }] }`.
 * - stderr: one `line N: <input>: <reason>` per rejected line. Exit 0 (rejections are reported, not fatal), 2 for
 *   usage errors.
 */
import { Option, type Command } from 'commander';
import { loadConfig } from '../../config/index.js';
import { MODEL_NAMES } from '../../kie/models.js';
import { checkEnqueueOptions, checkInputFile, INPUT_ENCODINGS, isInputError, parseInput, type InputEncoding, type ParsedLine } from '../../producer/index.js';
import { estimateLines, type EstimateReport } from '../../worker/estimate.js';
import { UsageError } from '../usage-error.js';

interface EstimateCliOptions {
  url: string[];
  model?: string;
  factor?: string;
  probe?: boolean;
  json?: boolean;
  encoding?: InputEncoding;
}

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

export function register(program: Command): void {
  program
    .command('estimate')
    .description('Count the images of FILE (and --url) and estimate their credits; enqueues nothing')
    .argument('[file]', 'input file (.txt, .csv, .jsonl), or - for standard input')
    .option('--url <url>', 'an image URL or local file to add (repeatable)', (v: string, all: string[]) => [...all, v], [])
    .option('--model <model>', `model of images that name none (${MODEL_NAMES.join(', ')})`)
    .option('--factor <factor>', 'upscale factor of images that give none (topaz: 1, 2, 4 or 8; default 2)')
    .option('--probe', "read each image's head to price it by its real size (and count out images that would fail)")
    .option('--json', 'print the estimate as JSON')
    .addOption(new Option('--encoding <encoding>', "FILE's text encoding (as for enqueue)").choices(INPUT_ENCODINGS))
    .action(async (file: string | undefined, opts: EstimateCliOptions) => {
      if (file === undefined && opts.url.length === 0) {
        throw new UsageError('nothing to estimate: give a FILE and/or --url, e.g. `upscale estimate images.txt --model topaz/image-upscale --factor 4`');
      }
      try {
        checkEnqueueOptions({ ...(opts.model === undefined ? {} : { model: opts.model }), ...(opts.factor === undefined ? {} : { factor: opts.factor }) });
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
      for (const r of report.rejected) process.stderr.write(`line ${r.line}: ${r.input}: ${r.reason}\n`);
      process.stdout.write(opts.json ? JSON.stringify(report) + '\n' : renderEstimate(report));
    });
}
