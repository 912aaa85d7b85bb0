/**
 * `upscale export --batch ID [--format jsonl|csv] [--bom] [--out FILE]`: every result record of a batch, in input
 * order (by line), to standard output unless `--out`. With `--out` the records go to `FILE.tmp`, renamed to FILE
 * when complete, so a partial file never appears under FILE. `--bom` starts a CSV with a UTF-8 byte order mark,
 * for Excel.
 */
import { statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../../config/index.js';
import { EXPORT_FORMATS, type ExportFormat } from '../../results/export.js';
import { UsageError } from '../usage-error.js';
import { requireBatchOption } from './retry.js';

function parseFormat(text: string): ExportFormat {
  const f = text.trim().toLowerCase();
  if (!(EXPORT_FORMATS as readonly string[]).includes(f)) {
    throw new UsageError(`--format: unknown format "${text}"; use one of ${EXPORT_FORMATS.join(', ')} (for example --format csv)`);
  }
  return f as ExportFormat;
}

/** A usable `--out`: not empty, not a folder, in a folder that exists. Throws UsageError naming the reason. */
export function checkOutFile(out: string): void {
  if (out.trim() === '') throw new UsageError('--out is empty; give a file name, or leave it out to write to standard output');
  if (statSync(out, { throwIfNoEntry: false })?.isDirectory()) throw new UsageError(`--out "${out}" is a folder; give a file name in it`);
  const folder = dirname(resolve(out));
  if (!statSync(folder, { throwIfNoEntry: false })?.isDirectory()) throw new UsageError(`--out "${out}": the folder ${folder} does not exist; create it first`);
}

export function register(program: Command): void {
  program
    .command('export')
    .description('Write every result record of a batch, by line, as JSONL or CSV (to standard output unless --out)')
    .option('--batch <id>', 'the batch (see `upscale status`)')
    .option('--format <format>', `${EXPORT_FORMATS.join(' or ')}`, 'jsonl')
    .option('--bom', 'start a CSV with a UTF-8 byte order mark, so Excel reads ü, é, € right')
    .option('--out <file>', 'write to FILE (atomically, through FILE.tmp) instead of standard output')
    .action(async (opts: { batch?: string; format: string; bom?: boolean; out?: string }) => {
      const batchId = requireBatchOption('export', opts.batch);
      const format = parseFormat(opts.format);
      const bom = opts.bom ?? false;
      if (bom && format !== 'csv') throw new UsageError('--bom is for --format csv (a byte order mark is what Excel needs to read a CSV as UTF-8; JSON Lines has none)');
      if (opts.out !== undefined) checkOutFile(opts.out);
      const config = loadConfig();
      // The record store (Redis) loads only when this command runs.
      const { runExport } = await import('../run/export.js');
      await runExport(config, batchId, format, bom, opts.out);
    });
}
