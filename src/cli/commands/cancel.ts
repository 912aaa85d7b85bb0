/**
 * `upscale cancel --batch ID [--json]`: cancels the images of a batch not yet submitted to kie.ai. Images already
 * submitted (or being submitted right now) are followed to their end, so nothing paid for is lost.
 */
import type { Command } from 'commander';
import { loadConfig } from '../../config/index.js';
import { cancel } from '../../control/index.js';
import { createRuntime } from '../../runtime.js';
import { requireBatchOption } from './retry.js';

export function register(program: Command): void {
  program
    .command('cancel')
    .description('Cancel the images of a batch that were not submitted yet; submitted ones are followed to their end')
    .option('--batch <id>', 'the batch (see `upscale status`)')
    .option('--json', 'print { cancelled, inFlight } as JSON')
    .action(async (opts: { batch?: string; json?: boolean }) => {
      const batchId = requireBatchOption('cancel', opts.batch);
      const rt = createRuntime(loadConfig());
      try {
        const result = await cancel(rt, batchId);
        if (opts.json) {
          console.log(JSON.stringify({ batchId, ...result }));
          return;
        }
        console.log(`Cancelled ${result.cancelled} image(s) of batch ${batchId} that were not submitted yet.`);
        if (result.inFlight > 0) {
          console.log(`${result.inFlight} image(s) already submitted or being submitted are followed to their end.`);
        }
      } finally {
        await rt.close();
      }
    });
}
