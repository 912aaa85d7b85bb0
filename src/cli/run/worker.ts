/**
 * What `upscale worker` runs (src/cli/commands/worker.ts parses the flags): the lanes until SIGINT/SIGTERM, then the
 * drain. Loaded only when that command runs.
 */
import type { Config } from '../../config/index.js';
import type { Lane } from '../../queue/names.js';
import { createRuntime } from '../../runtime.js';
import { defaultLanes, startWorkers } from '../../worker/index.js';
import { checkEvictionPolicy } from '../../worker/preflight-redis.js';
import { untilStopped } from '../until-stopped.js';
import { UsageError } from '../usage-error.js';

export interface WorkerRun {
  /** `--lanes`, parsed; undefined: the default lanes of this configuration. */
  lanes: Lane[] | undefined;
  /** `--concurrency`, parsed: jobs in flight per lane. */
  concurrency: number;
  /** ms past SHUTDOWN_TIMEOUT by which the process exits after the first signal. */
  exitMarginMs: number;
}

export async function runWorker(config: Config, o: WorkerRun): Promise<void> {
  const rt = createRuntime(config, { role: 'worker' });
  const lanes = o.lanes ?? defaultLanes(rt);
  if (lanes.includes('download') && !config.output) {
    await rt.close();
    throw new UsageError('--lanes download needs OUTPUT_URL or OUTPUT_DIR (where the results are stored)');
  }
  await checkEvictionPolicy(rt.redis, rt.log);
  const handle = await startWorkers(rt, { lanes, concurrency: o.concurrency });
  const timeoutMs = config.shutdownTimeoutMs;
  // The promise kept whatever Redis or the network do: exit 0 by SHUTDOWN_TIMEOUT + EXIT_MARGIN_MS.
  await untilStopped(rt.log, {
    deadlineMs: timeoutMs + o.exitMarginMs,
    late: { fields: { timeoutMs }, message: 'shutdown took too long; exiting (unfinished jobs are taken over when their locks expire)' },
    close: async (signal) => {
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
}
