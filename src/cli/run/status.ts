/** What `upscale status` runs once its flags are checked (src/cli/commands/status.ts). Loaded only when it runs. */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../../config/index.js';
import { getStatus } from '../../control/index.js';
import { isBatchFinished, renderStatus, statusJson } from '../../results/status-view.js';
import { createRuntime } from '../../runtime.js';

/** Clear the screen and move the cursor home (ANSI). */
const CLEAR = '\x1b[H\x1b[2J';

export interface StatusRun {
  batch?: string;
  json?: boolean;
  watch?: boolean;
  /** Between two redraws with `watch`, ms. */
  intervalMs: number;
}

export async function runStatus(config: Config, opts: StatusRun): Promise<void> {
  const intervalMs = opts.intervalMs;
  const rt = createRuntime(config);
  const stop = new AbortController();
  const onSigint = () => stop.abort();
  if (opts.watch) process.once('SIGINT', onSigint);
  const tty = Boolean(process.stdout.isTTY) && !opts.json;
  try {
    for (let tick = 0; ; tick++) {
      const now = Date.now();
      const snapshot = await getStatus(rt, opts.batch === undefined ? { now } : { now, batchId: opts.batch });
      if (opts.json) {
        const json = JSON.stringify(statusJson(snapshot, opts.batch));
        process.stdout.write(json + '\n');
      } else {
        const text = renderStatus(snapshot, { now, listing: opts.batch === undefined });
        process.stdout.write(opts.watch && tty ? CLEAR + text : (tick > 0 ? '\n' : '') + text);
      }
      if (!opts.watch || snapshot.batches.every(isBatchFinished)) return;
      try {
        await sleep(intervalMs, undefined, { signal: stop.signal });
      } catch {
        process.exitCode = 130;
        return;
      }
    }
  } finally {
    process.off('SIGINT', onSigint);
    await rt.close();
  }
}
