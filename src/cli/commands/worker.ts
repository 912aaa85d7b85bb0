/** `upscale worker [--lanes submit,poll,download] [--concurrency N]`: runs lanes until SIGINT/SIGTERM, then drains. */
import type { Command } from 'commander';
import { loadConfig } from '../../config/index.js';
import { LANES, type Lane } from '../../queue/names.js';
import { createRuntime } from '../../runtime.js';
import { startHeapTrim } from '../../worker/heap-trim.js';
import { CLOSE_GRACE_MS, defaultLanes, startWorkers } from '../../worker/index.js';
import { checkEvictionPolicy } from '../../worker/preflight-redis.js';
import { untilStopped } from '../until-stopped.js';
import { UsageError } from '../usage-error.js';

/** The most `upscale worker` takes past SHUTDOWN_TIMEOUT to exit after SIGTERM/SIGINT (ms). */
export const EXIT_MARGIN_MS = CLOSE_GRACE_MS + 1000;

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
      const stopTrim = startHeapTrim();
      const timeoutMs = config.shutdownTimeoutMs;
      // The promise kept whatever Redis or the network do: exit 0 by SHUTDOWN_TIMEOUT + EXIT_MARGIN_MS.
      await untilStopped(rt.log, {
        deadlineMs: timeoutMs + EXIT_MARGIN_MS,
        late: { fields: { timeoutMs }, message: 'shutdown took too long; exiting (unfinished jobs are taken over when their locks expire)' },
        close: async (signal) => {
          stopTrim();
          rt.log.info({ signal, timeoutMs }, 'draining: no new job starts; running ones may finish until the deadline');
          await handle
            .close(timeoutMs)
            .then((clean) => rt.log.info({ clean }, clean ? 'workers stopped' : 'workers stopped at the deadline; aborted jobs were given back'))
            .catch((err: unknown) => rt.log.error({ err }, 'error while stopping the workers'));
          await Promise.race([rt.close().catch(() => undefined), new Promise((r) => setTimeout(r, 500).unref())]);
        },
      });
      // Sockets of aborted downloads may linger a moment after everything of ours has closed: do not wait for them.
      setTimeout(() => process.exit(process.exitCode ?? 0), 200).unref();
    });
}
