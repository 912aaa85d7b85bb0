/**
 * `upscale approve --batch ID [--json]`: approves a batch's pilot; every held image is submitted. Exit 1 for an
 * unknown batch or one without a pilot.
 */
import type { Command } from 'commander';
import { loadConfig } from '../../config/index.js';
import { approve } from '../../control/index.js';
import { createRuntime } from '../../runtime.js';
import { requireBatchOption } from './retry.js';

export function register(program: Command): void {
  program
    .command('approve')
    .description("Approve a batch's pilot (enqueue --pilot N): submit the images held behind it")
    .option('--batch <id>', 'the batch (see `upscale status`)')
    .option('--json', 'print { batchId, released, alreadyApproved } as JSON')
    .action(async (opts: { batch?: string; json?: boolean }) => {
      const batchId = requireBatchOption('approve', opts.batch);
      const rt = createRuntime(loadConfig());
      try {
        let result: Awaited<ReturnType<typeof approve>>;
        try {
          result = await approve(rt, batchId);
        } catch (e) {
          if (e instanceof RangeError) {
            process.stderr.write(`upscale: ${e.message}\n`);
            process.exitCode = 1;
            return;
          }
          throw e;
        }
        if (opts.json) {
          console.log(JSON.stringify({ batchId, ...result }));
          return;
        }
        console.log(`Approved the pilot of batch ${batchId}: ${result.released} held image(s) released for submission.`);
      } finally {
        await rt.close();
      }
    });
}
