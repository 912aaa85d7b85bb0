/**
 * `upscale retry --batch ID --downloads`: fetches again the outputs of succeeded images whose download failed for
 * good (`download: 'failed'`: the result URL expired or answered 404, the bytes failed verification, or an older
 * version spent the tries on a store outage). No new kie.ai task and no credits: the record's result URLs are
 * fetched again (an expired one is exchanged once for a fresh link, kie.ai's download-url; kie.ai keeps results
 * about 24 h, KIE_API.md). The record goes back to `download: 'pending'` (which re-opens a finished batch: its
 * results.jsonl / summary.json are written again once the downloads settle) and a download job is added.
 */
import { downloadJobId } from '../queue/identity.js';
import type { DownloadJobData } from '../queue/job-data.js';
import { requireBatch } from '../results/export.js';
import type { ResultRecord } from '../results/record.js';
import type { Runtime } from '../runtime.js';

/** Records read per round. */
const CHUNK = 500;

/**
 * Re-queues the failed downloads of `batchId`. Throws `UnknownBatchError` for an unknown batch, and an `Error`
 * when no output is configured (OUTPUT_URL / OUTPUT_DIR: there is nowhere to store them).
 * @returns `queued`: downloads added again; `skipped`: other records (not succeeded, or not a failed download).
 */
export async function retryDownloads(rt: Runtime, batchId: string): Promise<{ queued: number; skipped: number }> {
  await requireBatch(rt.store, batchId);
  if (!rt.config.output) throw new Error('retrying downloads needs OUTPUT_URL or OUTPUT_DIR (where the outputs are stored)');
  let queued = 0;
  let skipped = 0;
  const again = Date.now().toString(36);
  let chunk: ResultRecord[] = [];
  const flush = async () => {
    const candidates = chunk.filter((r) => r.state === 'succeeded' && r.download === 'failed' && r.resultUrls.length > 0);
    skipped += chunk.length - candidates.length;
    chunk = [];
    for (const r of candidates) {
      const t = await rt.store.transition(batchId, r.jobId, { download: 'pending', outputProblem: null, failMsg: null }, { from: ['succeeded'] });
      if (t.status !== 'ok') {
        skipped += 1;
        continue;
      }
      const data: DownloadJobData = { jobId: r.jobId, batchId, generation: r.generation, resultUrls: r.resultUrls };
      // A new job id: the first download job of this generation may still be kept among the completed ones.
      await rt.queues.download.add('download', data, { jobId: `${downloadJobId(r.jobId, r.generation)}-${again}` });
      queued += 1;
    }
  };
  for await (const record of rt.store.records(batchId)) {
    chunk.push(record);
    if (chunk.length >= CHUNK) await flush();
  }
  await flush();
  return { queued, skipped };
}
