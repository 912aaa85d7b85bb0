/** What `upscale retry` runs once its flags are checked (src/cli/commands/retry.ts). Loaded only when it runs. */
import type { Config } from '../../config/index.js';
import { heldBack, retry, retryDownloads } from '../../control/index.js';
import { createRuntime } from '../../runtime.js';
import { formatCount } from '../../config/units.js';

/**
 * Prints the result: JSON on one line (`batchWarnings` when what was put back will not move yet), or text, with a
 * `warning:` line on stderr naming what holds it (the batch's pause, its pilot, a lane it needs).
 */
export async function runRetry(config: Config, batchId: string, opts: { json?: boolean; downloads?: boolean }): Promise<void> {
  const rt = createRuntime(config);
  const print = (result: object, text: string[], warning: string | null) => {
    if (opts.json) {
      console.log(JSON.stringify({ batchId, ...result, ...(warning === null ? {} : { batchWarnings: [warning] }) }));
      return;
    }
    for (const line of text) console.log(line);
    if (warning !== null) console.error(`warning: ${warning}`);
  };
  try {
    if (opts.downloads) {
      const result = await retryDownloads(rt, batchId);
      const warning = result.queued > 0 ? await heldBack(rt, batchId, 'downloads') : null;
      print(result, [
        result.queued === 0
          ? `Nothing to fetch again in batch ${batchId}: no output is missing after a failed download.`
          : `Fetching ${formatCount(result.queued, 'missing output')} of batch ${batchId} again (a worker with the download lane does it).`,
      ], warning);
      return;
    }
    const result = await retry(rt, batchId);
    const [summary, warning] = await Promise.all([rt.store.getSummary(batchId), result.retried > 0 ? heldBack(rt, batchId, 'tasks') : null]);
    const missing = summary?.downloadsFailed ?? 0;
    const missingHint = missing > 0 ? ` ${formatCount(missing, 'output')} missing after a failed download: \`upscale retry --batch ${batchId} --downloads\` fetches them again.` : '';
    print(
      result,
      result.retried === 0
        ? [`Nothing to retry in batch ${batchId}: no image is failed or timed out.${missingHint}`]
        : [
            `Retried ${formatCount(result.retried, 'failed or timed-out image')} of batch ${batchId}; ${formatCount(result.skipped, 'other')} left as they were.`,
            `Follow them with \`upscale status --batch ${batchId} --watch\`.`,
          ],
      warning,
    );
  } finally {
    await rt.close();
  }
}
