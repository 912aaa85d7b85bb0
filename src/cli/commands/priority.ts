/**
 * `upscale priority --batch ID LEVEL [--json]`: changes a batch's share of the create budget among batches with
 * waiting images: `high`, `normal`, `low` weigh 4 : 2 : 1; `urgent` goes before every other batch.
 */
import { Argument, type Command } from 'commander';
import { loadConfig } from '../../config/index.js';
import { PRIORITIES, type Priority } from '../../queue/fair-share.js';
import { requireBatchOption } from './retry.js';

export function register(program: Command): void {
  program
    .command('priority')
    .description('Change a batch\'s priority: high, normal, low share the create budget 4 : 2 : 1; urgent goes first')
    .addArgument(new Argument('<level>', 'the new priority').choices(PRIORITIES))
    .option('--batch <id>', 'the batch (see `upscale status`)')
    .option('--json', 'print { batchId, before, priority, held } as JSON')
    .action(async (level: Priority, opts: { batch?: string; json?: boolean }) => {
      const batchId = requireBatchOption('priority', opts.batch);
      const config = loadConfig();
      // The control functions (BullMQ, the record store) load only when this command runs.
      const { runPriority } = await import('../run/priority.js');
      await runPriority(config, batchId, level, opts);
    });
}
