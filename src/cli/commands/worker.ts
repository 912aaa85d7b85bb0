/** `upscale worker [--lanes submit,poll,download] [--concurrency N]`: runs lanes until SIGINT/SIGTERM, then drains. */
import type { Command } from 'commander';
import { loadConfig } from '../../config/index.js';
import { LANES } from '../../queue/names.js';
import { CLOSE_GRACE_MS } from '../../worker/close-grace.js';
import { UsageError } from '../usage-error.js';
import { collectLanes, parseLanes } from './pause.js';

/** The most `upscale worker` takes past SHUTDOWN_TIMEOUT to exit after SIGTERM/SIGINT (ms). */
export const EXIT_MARGIN_MS = CLOSE_GRACE_MS + 1000;

export function parsePositiveInt(flag: string, text: string, max = 10_000): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || n < 1 || n > max) throw new UsageError(`${flag} "${text}" must be a whole number from 1 to ${max}`);
  return n;
}

export function register(program: Command): void {
  program
    .command('worker')
    .description('Run the lanes (submit, poll, download) until SIGINT/SIGTERM, then drain within SHUTDOWN_TIMEOUT.')
    .option('--lanes <list>', `comma list of lanes (${LANES.join(', ')}); repeatable; default submit,poll (+download with OUTPUT_URL or OUTPUT_DIR)`, collectLanes)
    .option('--concurrency <n>', 'jobs in flight per lane in this process', '16')
    .action(async (opts: { lanes?: string[]; concurrency: string }) => {
      // The flags first: a bad one is named whatever the environment holds.
      const concurrency = parsePositiveInt('--concurrency', opts.concurrency);
      const lanes = opts.lanes !== undefined ? parseLanes(opts.lanes) : undefined;
      const config = loadConfig();
      // The lanes (BullMQ, sharp, the kie.ai client) load only when this command runs.
      const { runWorker } = await import('../run/worker.js');
      await runWorker(config, { lanes, concurrency, exitMarginMs: EXIT_MARGIN_MS });
    });
}
