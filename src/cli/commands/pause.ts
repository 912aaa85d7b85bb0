/**
 * `upscale pause [--lanes submit,poll,download] [--json]`: pauses lanes globally (default: submit only, which stops
 * spending while polling keeps following the tasks already paid for). `upscale resume` continues.
 */
import type { Command } from 'commander';
import { loadConfig } from '../../config/index.js';
import { pause } from '../../control/index.js';
import { LANES, type Lane } from '../../queue/names.js';
import { createRuntime } from '../../runtime.js';
import { UsageError } from '../usage-error.js';

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
    .option('--json', 'print the result as JSON')
    .action(async (opts: { lanes: string; json?: boolean }) => {
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
