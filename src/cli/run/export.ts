/** What `upscale export` runs once its flags are checked (src/cli/commands/export.ts). Loaded only when it runs. */
import { createWriteStream } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import { once } from 'node:events';
import type { Config } from '../../config/index.js';
import { exportBatch, requireBatch, type ExportFormat } from '../../results/export.js';
import { createRuntime, type Runtime } from '../../runtime.js';
import { formatCount } from '../../config/units.js';

/** Writes the batch's records to `out` (through `out.tmp`), or to standard output when `out` is undefined. */
export async function runExport(config: Config, batchId: string, format: ExportFormat, bom: boolean, out: string | undefined): Promise<void> {
  const rt = createRuntime(config);
  try {
    if (out === undefined) {
      await toStdout(rt, batchId, format, bom);
    } else {
      const count = await toFile(rt, batchId, format, bom, out);
      console.error(`Exported ${formatCount(count, 'record')} of batch ${batchId} to ${out}`);
    }
  } finally {
    await rt.close();
  }
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
