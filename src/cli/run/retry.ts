/** What `upscale retry` runs once its flags are checked (src/cli/commands/retry.ts). Loaded only when it runs. */
import type { Config } from '../../config/index.js';
import { retry, retryDownloads } from '../../control/index.js';
import { createRuntime } from '../../runtime.js';

export async function runRetry(config: Config, batchId: string, opts: { json?: boolean; downloads?: boolean }): Promise<void> {
  const rt = createRuntime(config);
  try {
    if (opts.downloads) {
      const result = await retryDownloads(rt, batchId);
      if (opts.json) {
        console.log(JSON.stringify({ batchId, ...result }));
        return;
      }
      console.log(
        result.queued === 0
          ? `Nothing to fetch again in batch ${batchId}: no output is missing after a failed download.`
          : `Fetching ${result.queued} missing output(s) of batch ${batchId} again (a worker with the download lane does it).`,
      );
      return;
    }
    const result = await retry(rt, batchId);
    const missing = (await rt.store.getSummary(batchId))?.downloadsFailed ?? 0;
    const missingHint = missing > 0 ? ` ${missing} output(s) are missing after a failed download: \`upscale retry --batch ${batchId} --downloads\` fetches them again.` : '';
    if (opts.json) {
      console.log(JSON.stringify({ batchId, ...result }));
      return;
    }
    console.log(
      result.retried === 0
        ? `Nothing to retry in batch ${batchId}: no image is failed or timed out.${missingHint}`
        : `Retried ${result.retried} failed or timed-out image(s) of batch ${batchId}; ${result.skipped} other(s) left as they were.`,
    );
    if (result.retried > 0) console.log(`Follow them with \`upscale status --batch ${batchId} --watch\`.`);
  } finally {
    await rt.close();
  }
}
