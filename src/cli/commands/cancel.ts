/**
 * `upscale cancel --batch ID [--json]`: cancels the images of a batch not yet submitted to kie.ai. Images already
 * submitted (or being submitted right now) are followed to their end, so nothing paid for is lost.
 */
import type { Command } from 'commander';
import { loadConfig } from '../../config/index.js';
import { requireBatchOption } from './retry.js';

export function register(program: Command): void {
  program
    .command('cancel')
    .description('Cancel the images of a batch that were not submitted yet; submitted ones are followed to their end')
    .option('--batch <id>', 'the batch (see `upscale status`)')
    .option('--json', 'print { cancelled, inFlight } as JSON')
    .action(async (opts: { batch?: string; json?: boolean }) => {
      const batchId = requireBatchOption('cancel', opts.batch);
      const config = loadConfig();
      // The control functions (BullMQ, the record store) load only when this command runs.
      const { runCancel } = await import('../run/cancel.js');
      await runCancel(config, batchId, opts);
    });
}
