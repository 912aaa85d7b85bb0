/**
 * `upscale pause [--lanes submit,poll,download] [--json]`: pauses lanes globally (default: submit only, which stops
 * spending while polling keeps following the tasks already paid for). `upscale resume` continues.
 * `upscale pause --batch ID [--json]`: pauses one batch only (its waiting images hold; the others share the budget).
 */
import type { Command } from 'commander';
import { loadConfig } from '../../config/index.js';
import { LANES, type Lane } from '../../queue/names.js';
import { UsageError } from '../usage-error.js';
import { requireBatchOption } from './retry.js';

/**
 * Parses `--lanes` into lanes: one comma list, or the lists of a repeated flag (`--lanes submit --lanes poll`, from
 * {@link collectLanes}) taken together. An unknown or empty name is a UsageError naming `--lanes`.
 */
export function parseLanes(text: string | readonly string[]): Lane[] {
  const names = (typeof text === 'string' ? [text] : text).flatMap((t) => t.split(',')).map((s) => s.trim()).filter((s) => s !== '');
  if (names.length === 0) throw new UsageError(`--lanes is empty; give one or more of ${LANES.join(', ')} (comma-separated)`);
  for (const n of names) {
    if (!(LANES as readonly string[]).includes(n)) {
      throw new UsageError(`--lanes: unknown lane "${n}"; the lanes are ${LANES.join(', ')} (for example --lanes submit,poll)`);
    }
  }
  return [...new Set(names)] as Lane[];
}

/**
 * commander's parser of a repeatable `--lanes`: every value given is kept (commander otherwise keeps the last one,
 * so `--lanes submit --lanes poll` ran the poll lane alone). The default, a string, is replaced by the first value
 * given, which starts the list.
 */
export function collectLanes(value: string, previous: string | string[] | undefined): string[] {
  return Array.isArray(previous) ? [...previous, value] : [value];
}

export function register(program: Command): void {
  program
    .command('pause')
    .description('Pause lanes for every worker (default: submit, which stops spending); `upscale resume` continues')
    .option('--lanes <list>', `comma-separated lanes to pause (${LANES.join(', ')}); repeatable`, collectLanes, 'submit')
    .option('--batch <id>', 'pause only this batch: its waiting images hold, other batches take the whole budget')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { lanes: string | string[]; batch?: string; json?: boolean }, cmd: Command) => {
      if (opts.batch !== undefined) return pauseOneBatch(cmd, opts);
      const lanes = parseLanes(opts.lanes);
      const config = loadConfig();
      // The control functions (BullMQ, the record store) load only when this command runs.
      const { runPause } = await import('../run/pause.js');
      await runPause(config, lanes, opts);
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
  const config = loadConfig();
  const { runPauseBatch } = await import('../run/pause.js');
  await runPauseBatch(config, batchId, opts);
}
