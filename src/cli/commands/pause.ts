/**
 * `upscale pause [--lanes submit,poll,download] [--json]`: pauses lanes globally (default: submit only, which stops
 * spending while polling keeps following the tasks already paid for). `upscale resume` continues.
 * `upscale pause --batch ID [--json]`: pauses one batch only (its waiting images hold; the others share the budget).
 */
import type { Command } from 'commander';
import { loadConfig } from '../../config/index.js';
import { pause, pauseBatch } from '../../control/index.js';
import { LANES, type Lane } from '../../queue/names.js';
import { createRuntime } from '../../runtime.js';
import { UsageError } from '../usage-error.js';
import { requireBatchOption } from './retry.js';

/** Parses `submit,poll` into lanes; an unknown or empty name is a UsageError naming `--lanes`. */
export function parseLanes(text: string): Lane[] {
  const names = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (names.length === 0) throw new UsageError(`--lanes is empty; give one or more of ${LANES.join(', ')} (comma-separated)`);
  for (const n of names) {
    if (!(LANES as readonly string[]).includes(n)) {
      throw new UsageError(`--lanes: unknown lane "${n}"; the lanes are ${LANES.join(', ')} (for example --lanes submit,poll)`);
    }
  }
  return [...new Set(names)] as Lane[];
}

export function register(program: Command): void {
  program
    .command('pause')
    .description('Pause lanes for every worker (default: submit, which stops spending); `upscale resume` continues')
    .option('--lanes <list>', `comma-separated lanes to pause (${LANES.join(', ')})`, 'submit')
    .option('--batch <id>', 'pause only this batch: its waiting images hold, other batches take the whole budget')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { lanes: string; batch?: string; json?: boolean }, cmd: Command) => {
      if (opts.batch !== undefined) return pauseOneBatch(cmd, opts);
      const lanes = parseLanes(opts.lanes);
      const rt = createRuntime(loadConfig());
      try {
        const results = await pause(rt, { lanes });
        if (opts.json) {
          console.log(JSON.stringify({ paused: results }));
          return;
        }
        for (const r of results) {
          console.log(
            r.alreadyPaused
              ? `${r.lane} lane was already paused (${r.reason.code}: ${r.reason.message}).`
              : `Paused the ${r.lane} lane for every worker.`,
          );
        }
        if (lanes.includes('submit') && !lanes.includes('poll')) {
          console.log('No new tasks are submitted; tasks already submitted are still followed to their end.');
        }
        console.log('Run `upscale resume` to continue.');
      } finally {
        await rt.close();
      }
    });
}

/** Refuses `--lanes` beside `--batch`: a batch pause and a lane pause are different things. */
export function checkBatchOrLanes(command: string, cmd: Command, batch: string | undefined): string {
  if (cmd.getOptionValueSource('lanes') === 'cli') {
    throw new UsageError(`--batch and --lanes do not go together: \`upscale ${command} --batch ID\` acts on one batch, \`upscale ${command} --lanes ...\` on whole lanes`);
  }
  return requireBatchOption(`${command}`, batch);
}

async function pauseOneBatch(cmd: Command, opts: { batch?: string; json?: boolean }): Promise<void> {
  const batchId = checkBatchOrLanes('pause', cmd, opts.batch);
  const rt = createRuntime(loadConfig());
  try {
    const r = await pauseBatch(rt, batchId);
    if (opts.json) {
      console.log(JSON.stringify(r));
      return;
    }
    console.log(r.alreadyPaused ? `Batch ${batchId} was already paused (${r.gate.reason}).` : `Paused batch ${batchId}: its ${r.held} held image(s) wait; other batches share the whole create budget.`);
    console.log('Images of it already submitted are followed to their end. Run `upscale resume --batch ' + batchId + '` to continue.');
  } finally {
    await rt.close();
  }
}
