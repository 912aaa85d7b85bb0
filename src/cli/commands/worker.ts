/** `upscale worker [--lanes submit,poll,download] [--concurrency N]`: runs lanes until SIGINT/SIGTERM, then drains. */
import type { Command } from 'commander';
import { loadConfig } from '../../config/index.js';
import { LANES, type Lane } from '../../queue/names.js';
import { createRuntime } from '../../runtime.js';
import { defaultLanes, startWorkers } from '../../worker/index.js';
import { checkEvictionPolicy } from '../../worker/preflight-redis.js';
import { UsageError } from '../usage-error.js';

export function parseLanes(text: string): Lane[] {
  const lanes = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (lanes.length === 0) throw new UsageError(`--lanes is empty; use a comma list of ${LANES.join(', ')}`);
  for (const lane of lanes) {
    if (!(LANES as readonly string[]).includes(lane)) throw new UsageError(`--lanes: unknown lane "${lane}"; use ${LANES.join(', ')}`);
  }
  return [...new Set(lanes)] as Lane[];
}

export function parsePositiveInt(flag: string, text: string, max = 10_000): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || n < 1 || n > max) throw new UsageError(`${flag} "${text}" must be a whole number from 1 to ${max}`);
  return n;
}

export function register(program: Command): void {
  program
    .command('worker')
    .description('Run the lanes (submit, poll, download) until SIGINT/SIGTERM, then drain within SHUTDOWN_TIMEOUT.')
    .option('--lanes <list>', `comma list of lanes (${LANES.join(', ')}); default submit,poll (+download with OUTPUT_URL or OUTPUT_DIR)`)
    .option('--concurrency <n>', 'jobs in flight per lane in this process', '16')
    .action(async (opts: { lanes?: string; concurrency: string }) => {
      const config = loadConfig();
      const concurrency = parsePositiveInt('--concurrency', opts.concurrency);
      const rt = createRuntime(config, { role: 'worker' });
      const lanes = opts.lanes ? parseLanes(opts.lanes) : defaultLanes(rt);
      if (lanes.includes('download') && !config.output) {
        await rt.close();
        throw new UsageError('--lanes download needs OUTPUT_URL or OUTPUT_DIR (where the results are stored)');
      }
      await checkEvictionPolicy(rt.redis, rt.log);
      const handle = await startWorkers(rt, { lanes, concurrency });
      await new Promise<void>((resolve) => {
        let stopping = false;
        const stop = (signal: string) => {
          if (stopping) {
            rt.log.warn({ signal }, 'second signal: exiting now');
            process.exit(1);
          }
          stopping = true;
          rt.log.info({ signal, timeoutMs: config.shutdownTimeoutMs }, 'draining');
          void handle
            .close(config.shutdownTimeoutMs)
            .then((clean) => rt.log.info({ clean }, 'workers stopped'))
            .finally(() => void rt.close().then(resolve));
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
    });
}
