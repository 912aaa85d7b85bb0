/**
 * `upscale resume [--lanes ...] [--json]`: resumes paused lanes (default: every lane) and clears why they were paused.
 * `upscale resume --batch ID [--json]`: resumes one paused batch.
 */
import type { Command } from 'commander';
import { loadConfig } from '../../config/index.js';
import { resume, resumeBatch } from '../../control/index.js';
import { LANES } from '../../queue/names.js';
import { createRuntime } from '../../runtime.js';
import { checkBatchOrLanes, parseLanes } from './pause.js';

export function register(program: Command): void {
  program
    .command('resume')
    .description('Resume paused lanes (after `upscale pause`, or a 401/402 pause once the key or credits are fixed)')
    .option('--lanes <list>', `comma-separated lanes to resume (${LANES.join(', ')})`, LANES.join(','))
    .option('--batch <id>', 'resume only this paused batch (`upscale pause --batch ID`)')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { lanes: string; batch?: string; json?: boolean }, cmd: Command) => {
      if (opts.batch !== undefined) {
        const batchId = checkBatchOrLanes('resume', cmd, opts.batch);
        const rt = createRuntime(loadConfig());
        try {
          const r = await resumeBatch(rt, batchId);
          if (opts.json) console.log(JSON.stringify(r));
          else if (!r.was) console.log(`Batch ${batchId} was not paused; nothing to resume.`);
          else console.log(`Resumed batch ${batchId} (was ${r.was.state}: ${r.was.reason}); its ${r.held} held image(s) take turns again.`);
        } finally {
          await rt.close();
        }
        return;
      }
      const lanes = parseLanes(opts.lanes);
      const rt = createRuntime(loadConfig());
      try {
        const result = await resume(rt, { lanes });
        if (opts.json) {
          console.log(JSON.stringify(result));
          return;
        }
        if (result.resumed.length === 0) console.log(`Nothing to resume: ${lanes.join(', ')} ${lanes.length === 1 ? 'was' : 'were'} not paused.`);
        for (const { lane, reason } of result.resumed) {
          const why = !reason ? '' : reason.code === 'manual' ? ` (was ${reason.message})` : ` (was paused: ${reason.message.includes(reason.code) ? '' : `${reason.code} `}${reason.message})`;
          console.log(`Resumed the ${lane} lane${why}.`);
        }
      } finally {
        await rt.close();
      }
    });
}
