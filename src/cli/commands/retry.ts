/**
 * `upscale retry --batch ID [--json]`: gives every failed or timed-out image of a batch a new task.
 * `upscale retry --batch ID --downloads`: fetches again the outputs whose download failed (no new task, no credits).
 */
import type { Command } from 'commander';
import { loadConfig } from '../../config/index.js';
import { retry, retryDownloads } from '../../control/index.js';
import { checkBatchId } from '../../queue/identity.js';
import { createRuntime } from '../../runtime.js';
import { UsageError } from '../usage-error.js';

/** Checks a required `--batch` value; a missing or malformed one is a UsageError saying what to pass. */
export function requireBatchOption(command: string, batch: string | undefined): string {
  if (batch === undefined) {
    throw new UsageError(`--batch is missing: run \`upscale ${command} --batch ID\` (\`upscale status\` lists batches)`);
  }
  const problem = checkBatchId(batch);
  if (problem) throw new UsageError(`--batch: ${problem}`);
  return batch;
}

export function register(program: Command): void {
  program
    .command('retry')
    .description('Submit every failed or timed-out image of a batch again (as a new generation)')
    .option('--batch <id>', 'the batch (see `upscale status`)')
    .option('--downloads', 'instead: fetch again the outputs whose download failed (succeeded images, no new task, no credits; while the kie.ai result URLs are valid, about 24 h)')
    .option('--json', 'print { retried, skipped } (with --downloads: { queued, skipped }) as JSON')
    .action(async (opts: { batch?: string; json?: boolean; downloads?: boolean }) => {
      const batchId = requireBatchOption('retry', opts.batch);
      const config = loadConfig();
      if (opts.downloads && !config.output) throw new UsageError('--downloads needs OUTPUT_URL or OUTPUT_DIR (where the outputs are stored)');
      const rt = createRuntime(config);
      try {
        if (opts.downloads) {
          const result = await retryDownloads(rt, batchId);
          if (opts.json) {
            console.log(JSON.stringify({ batchId, ...result }));
            return;
          }
          console.log(
            result.queued === 0
              ? `Nothing to fetch again in batch ${batchId}: no output is missing after a failed download.`
              : `Fetching ${result.queued} missing output(s) of batch ${batchId} again (a worker with the download lane does it).`,
          );
          return;
        }
        const result = await retry(rt, batchId);
        const missing = (await rt.store.getSummary(batchId))?.downloadsFailed ?? 0;
        const missingHint = missing > 0 ? ` ${missing} output(s) are missing after a failed download: \`upscale retry --batch ${batchId} --downloads\` fetches them again.` : '';
        if (opts.json) {
          console.log(JSON.stringify({ batchId, ...result }));
          return;
        }
        console.log(
          result.retried === 0
            ? `Nothing to retry in batch ${batchId}: no image is failed or timed out.${missingHint}`
            : `Retried ${result.retried} failed or timed-out image(s) of batch ${batchId}; ${result.skipped} other(s) left as they were.`,
        );
        if (result.retried > 0) console.log(`Follow them with \`upscale status --batch ${batchId} --watch\`.`);
      } finally {
        await rt.close();
      }
    });
}
