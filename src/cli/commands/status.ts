/**
 * `upscale status [--batch ID] [--json] [--watch] [--interval 2s]`.
 *
 * - Human output: a block per batch (progress, counts per state, credits, throughput, ETA, times in UTC) and the lanes
 *   (paused or not, and why).
 * - `--json`: with `--batch`, the batch's whole summary (`BatchSummary`, every state in `counts`) with `pilot` (the
 *   pilot's outcome, or null) and `notifications`; without it, `{ batches: [...], lanes: { submit: { paused, reason,
 *   counts }, ... }, pilots, notifications, credits }`. Times are Unix milliseconds. The README lists the fields
 *   (test/unit/readme-facts.test.ts holds it to `statusJson`).
 * - `--watch`: redraws every `--interval` (default 2s) until every shown batch is finished (exit 0) or SIGINT
 *   (exit 130). On a terminal the screen is redrawn in place; otherwise a new block is printed each time, and with
 *   `--json` one JSON line per tick (NDJSON).
 * - An unknown `--batch` exits 1 with "no batch named X".
 */
import type { Command } from 'commander';
import { loadConfig, parseDuration } from '../../config/index.js';
import { checkBatchId } from '../../queue/identity.js';
import { UsageError } from '../usage-error.js';

interface StatusOptions {
  batch?: string;
  json?: boolean;
  watch?: boolean;
  interval?: string;
}

function parseInterval(opts: StatusOptions): number {
  if (opts.interval === undefined) return 2000;
  if (!opts.watch) throw new UsageError('--interval applies only with --watch (for example: upscale status --watch --interval 5s)');
  let ms: number;
  try {
    ms = parseDuration(opts.interval);
  } catch (e) {
    throw new UsageError(`--interval: ${(e as Error).message}`);
  }
  if (ms < 200) throw new UsageError(`--interval: "${opts.interval}" is too short; use 200ms or more (for example 2s)`);
  return ms;
}

export function register(program: Command): void {
  program
    .command('status')
    .description('Show batch progress and lane state (times in --json are Unix milliseconds)')
    .option('--batch <id>', 'only this batch')
    .option('--json', 'print JSON (one line per tick with --watch)')
    .option('--watch', 'redraw until every shown batch is finished (or Ctrl-C)')
    .option('--interval <duration>', 'time between redraws with --watch (default 2s)')
    .action(async (opts: StatusOptions) => {
      if (opts.batch !== undefined) {
        const problem = checkBatchId(opts.batch);
        if (problem) throw new UsageError(`--batch: ${problem}`);
      }
      const intervalMs = parseInterval(opts);
      const config = loadConfig();
      // The status reader (BullMQ, the record store) loads only when this command runs.
      const { runStatus } = await import('../run/status.js');
      await runStatus(config, { ...opts, intervalMs });
    });
}
