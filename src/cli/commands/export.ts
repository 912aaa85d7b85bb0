/**
 * `upscale export --batch ID [--format jsonl|csv] [--bom] [--out FILE]`: every result record of a batch, in input
 * order (by line), to standard output unless `--out`. With `--out` the records go to `FILE.tmp`, renamed to FILE
 * when complete, so a partial file never appears under FILE. `--bom` starts a CSV with a UTF-8 byte order mark,
 * for Excel.
 */
import { createWriteStream } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import { once } from 'node:events';
import type { Command } from 'commander';
import { loadConfig } from '../../config/index.js';
import { EXPORT_FORMATS, exportBatch, requireBatch, type ExportFormat } from '../../results/export.js';
import { createRuntime, type Runtime } from '../../runtime.js';
import { UsageError } from '../usage-error.js';
import { requireBatchOption } from './retry.js';

function parseFormat(text: string): ExportFormat {
  const f = text.trim().toLowerCase();
  if (!(EXPORT_FORMATS as readonly string[]).includes(f)) {
    throw new UsageError(`--format: unknown format "${text}"; use one of ${EXPORT_FORMATS.join(', ')} (for example --format csv)`);
  }
  return f as ExportFormat;
}

async function toFile(rt: Runtime, batchId: string, format: ExportFormat, bom: boolean, file: string): Promise<number> {
  await requireBatch(rt.store, batchId);
  const tmp = `${file}.tmp`;
  const stream = createWriteStream(tmp);
  try {
    await once(stream, 'open');
    const count = await exportBatch(rt.store, batchId, { format, bom, out: stream });
    stream.end();
    await once(stream, 'close');
    await rename(tmp, file);
    return count;
  } catch (e) {
    stream.destroy();
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

async function toStdout(rt: Runtime, batchId: string, format: ExportFormat, bom: boolean): Promise<void> {
  // A reader that stops early (`| head`) closes the pipe: stop quietly instead of failing on EPIPE.
  let streamError: NodeJS.ErrnoException | undefined;
  const onError = (e: NodeJS.ErrnoException) => {
    streamError = e;
  };
  process.stdout.on('error', onError);
  try {
    await exportBatch(rt.store, batchId, { format, bom, out: process.stdout });
  } catch (e) {
    if (streamError?.code !== 'EPIPE') throw streamError ?? e;
  } finally {
    process.stdout.off('error', onError);
  }
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
      if (opts.out !== undefined && opts.out.trim() === '') throw new UsageError('--out is empty; give a file name, or leave it out to write to standard output');
      const rt = createRuntime(loadConfig());
      try {
        if (opts.out === undefined) {
          await toStdout(rt, batchId, format, bom);
        } else {
          const count = await toFile(rt, batchId, format, bom, opts.out);
          console.error(`Exported ${count} record(s) of batch ${batchId} to ${opts.out}`);
        }
      } finally {
        await rt.close();
      }
    });
}
