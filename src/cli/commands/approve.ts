/**
 * `upscale approve --batch ID [--json]`: approves a batch's pilot; every held image is submitted. Exit 1 for an
 * unknown batch or one without a pilot.
 */
import type { Command } from 'commander';
import { loadConfig } from '../../config/index.js';
import { requireBatchOption } from './retry.js';

export function register(program: Command): void {
  program
    .command('approve')
    .description("Approve a batch's pilot (enqueue --pilot N): submit the images held behind it")
    .option('--batch <id>', 'the batch (see `upscale status`)')
    .option('--json', 'print { batchId, released, alreadyApproved } as JSON')
    .action(async (opts: { batch?: string; json?: boolean }) => {
      const batchId = requireBatchOption('approve', opts.batch);
      const config = loadConfig();
      // The control functions (BullMQ, the record store) load only when this command runs.
      const { runApprove } = await import('../run/approve.js');
      await runApprove(config, batchId, opts);
    });
}
