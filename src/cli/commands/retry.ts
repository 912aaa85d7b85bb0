/**
 * `upscale retry --batch ID [--json]`: gives every failed or timed-out image of a batch a new task.
 * `upscale retry --batch ID --downloads`: fetches again the outputs whose download failed (no new task, no credits).
 */
import type { Command } from 'commander';
import { loadConfig } from '../../config/index.js';
import { checkBatchId } from '../../queue/identity.js';
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
      // The control functions (BullMQ, the record store) load only when this command runs.
      const { runRetry } = await import('../run/retry.js');
      await runRetry(config, batchId, opts);
    });
}
