/**
 * `upscale resume [--lanes ...] [--json]`: resumes paused lanes (default: every lane) and clears why they were paused.
 * `upscale resume --batch ID [--json]`: resumes one paused batch.
 */
import type { Command } from 'commander';
import { loadConfig } from '../../config/index.js';
import { LANES } from '../../queue/names.js';
import { checkBatchOrLanes, collectLanes, parseLanes } from './pause.js';

export function register(program: Command): void {
  program
    .command('resume')
    .description('Resume paused lanes (after `upscale pause`, or a 401/402 pause once the key or credits are fixed)')
    .option('--lanes <list>', `comma-separated lanes to resume (${LANES.join(', ')}); repeatable`, collectLanes, LANES.join(','))
    .option('--batch <id>', 'resume only this paused batch (`upscale pause --batch ID`)')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { lanes: string | string[]; batch?: string; json?: boolean }, cmd: Command) => {
      // The control functions (BullMQ, the record store) load only when this command runs.
      if (opts.batch !== undefined) {
        const batchId = checkBatchOrLanes('resume', cmd, opts.batch);
        const config = loadConfig();
        const { runResumeBatch } = await import('../run/resume.js');
        await runResumeBatch(config, batchId, opts);
        return;
      }
      const lanes = parseLanes(opts.lanes);
      const config = loadConfig();
      const { runResume } = await import('../run/resume.js');
      await runResume(config, lanes, opts);
    });
}
