/** `upscale retry --batch ID [--json]`: gives every failed or timed-out image of a batch a new task. */
import type { Command } from 'commander';
import { loadConfig } from '../../config/index.js';
import { retry } from '../../control/index.js';
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
    .option('--json', 'print { retried, skipped } as JSON')
    .action(async (opts: { batch?: string; json?: boolean }) => {
      const batchId = requireBatchOption('retry', opts.batch);
      const rt = createRuntime(loadConfig());
      try {
        const result = await retry(rt, batchId);
        if (opts.json) {
          console.log(JSON.stringify({ batchId, ...result }));
          return;
        }
        console.log(
          result.retried === 0
            ? `Nothing to retry in batch ${batchId}: no image is failed or timed out.`
            : `Retried ${result.retried} failed or timed-out image(s) of batch ${batchId}; ${result.skipped} other(s) left as they were.`,
        );
        if (result.retried > 0) console.log(`Follow them with \`upscale status --batch ${batchId} --watch\`.`);
      } finally {
        await rt.close();
      }
    });
}
