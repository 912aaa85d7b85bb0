import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Finalizer } from '../../src/batch/finalizer.js';
import { BatchWatch } from '../../src/batch/watch.js';
import { retry } from '../../src/control/index.js';
import { recentEvents } from '../../src/notify/index.js';
import { writeBatchFile } from '../../src/results/batch-files.js';
import type { ResultRecord } from '../../src/results/record.js';
import { startWorkers, type WorkerHandle } from '../../src/worker/index.js';
import { waitFor } from '../helpers/redis.js';
import { enqueueDirect, startLocalRig, type LocalRig } from './preflight-fixtures.js';

let rig: LocalRig;
let second: WorkerHandle;
beforeAll(async () => {
  rig = await startLocalRig();
  // Two sets of lanes and batch watches, as two worker processes would run them.
  await rig.start({ concurrency: 4, watch: { tickMs: 50, watchEveryMs: 200 } });
  second = await startWorkers(rig.rt, { concurrency: 4, watch: { tickMs: 50, watchEveryMs: 200 } });
});
afterAll(async () => {
  await second.close(3000);
  await rig.stop();
});

async function finalized(batchId: string, epoch = 0) {
  return waitFor(
    async () => {
      const s = await rig.rt.store.getSummary(batchId);
      return s && s.finalizedAt !== null && s.epoch === epoch ? s : null;
    },
    { timeoutMs: 60_000, intervalMs: 100, what: `batch ${batchId} finalized at epoch ${epoch}` },
  );
}

async function completedEvents(batchId: string) {
  return (await recentEvents(rig.rt, { batchId, limit: 100 })).filter((e) => e.event.type === 'batch.completed');
}

async function readJsonl(path: string): Promise<ResultRecord[]> {
  const text = await readFile(path, 'utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as ResultRecord);
}

describe('finalizer', () => {
  it('writes results.jsonl and summary.json once, after the last download, and stores one batch.completed', async () => {
    const batch = 'fin-basic';
    const items = Array.from({ length: 6 }, (_, i) => ({ input: rig.image(`fin${i}`, 64, 48, 'png') }));
    items.push({ input: `${rig.sim.url}/sim/missing/nothing-here.png` }); // fails its pre-flight
    await enqueueDirect(rig.rt, batch, items);
    const s = await finalized(batch);
    expect(s.counts.succeeded).toBe(6);
    expect(s.counts.failed).toBe(1);
    expect(s.downloadsPending).toBe(0);
    expect(s.resultsAt).toBe(join(rig.outputDir, batch));
    const records = await readJsonl(join(rig.outputDir, batch, 'results.jsonl'));
    expect(records).toHaveLength(7);
    // Finalized after every download: each success in the file already has its file.
    for (const r of records.filter((x) => x.state === 'succeeded')) expect(r.outputPath).toMatch(/fin\d/);
    const summary = JSON.parse(await readFile(join(rig.outputDir, batch, 'summary.json'), 'utf8')) as Record<string, unknown>;
    expect(summary).toMatchObject({ batchId: batch, total: 7, records: 7, epoch: 0, counts: { succeeded: 6, failed: 1 } });
    const events = await completedEvents(batch);
    expect(events).toHaveLength(1);
    expect(events[0]?.event.id).toBe(`evt.batch.completed.${batch}.0`);
    expect(events[0]?.event.data).toMatchObject({ total: 7, resultsAt: join(rig.outputDir, batch), counts: { succeeded: 6, failed: 1 } });
  });

  it('claims once: twenty finalizers racing on one complete batch finalize it once', async () => {
    const batch = 'fin-race';
    await enqueueDirect(rig.rt, batch, [{ input: `${rig.sim.url}/sim/missing/a.png` }]);
    // The running watches may win too; what matters is one commit, one event.
    const outcomes = await Promise.all(Array.from({ length: 20 }, () => new Finalizer(rig.rt).finalize(batch)));
    await finalized(batch);
    expect(outcomes.filter((o) => o === 'finalized').length).toBeLessThanOrEqual(1);
    expect(await completedEvents(batch)).toHaveLength(1);
  });

  it('a retry re-opens the batch and it is finalized again (new epoch, a second event); so does a late image', async () => {
    const batch = 'fin-reopen';
    await enqueueDirect(rig.rt, batch, [{ input: rig.image('re0') }, { input: `${rig.sim.url}/sim/missing/c.png` }]);
    await finalized(batch, 0);
    const r = await retry(rig.rt, batch);
    expect(r.retried).toBe(1);
    const open = await rig.rt.store.getSummary(batch);
    expect(open?.epoch).toBe(1);
    const s1 = await finalized(batch, 1);
    expect(s1.counts).toMatchObject({ succeeded: 1, failed: 1 });
    await enqueueDirect(rig.rt, batch, [{ input: rig.image('late') }]);
    const s2 = await finalized(batch, 2);
    expect(s2.total).toBe(3);
    expect((await readJsonl(join(rig.outputDir, batch, 'results.jsonl'))).length).toBe(3);
    const ids = (await completedEvents(batch)).map((e) => e.event.id).sort();
    expect(ids).toEqual([0, 1, 2].map((n) => `evt.batch.completed.${batch}.${n}`));
  });

  it('a finalizer that dies between its files and its commit is taken over after its lease; one event', async () => {
    const batch = 'fin-crash';
    // Only the finalizers of this test may act: the running watches stop (last test of the file using them).
    await Promise.all([rig.workers?.watch?.stop(), second.watch?.stop()]);
    await enqueueDirect(rig.rt, batch, [{ input: `${rig.sim.url}/sim/missing/b.png` }]);
    await waitFor(async () => (await rig.rt.store.getSummary(batch))?.counts.failed === 1, { timeoutMs: 30_000, what: 'image failed' });
    const dying = new Finalizer(rig.rt, rig.rt.log, {
      leaseMs: 1500,
      beforeCommit: () => {
        throw new Error('killed before the commit');
      },
    });
    await expect(dying.finalize(batch)).rejects.toThrow('killed before the commit');
    expect((await rig.rt.store.getSummary(batch))?.finalizedAt).toBeNull();
    // Files were written, but nothing is finished or announced; another finalizer waits out the lease.
    const other = new Finalizer(rig.rt);
    expect(await other.finalize(batch)).toBe('busy');
    const taken = new BatchWatch(rig.rt, rig.rt.log, { tickMs: 50 });
    taken.start();
    try {
      const s = await finalized(batch);
      expect(s.epoch).toBe(0);
    } finally {
      await taken.stop();
    }
    expect(await completedEvents(batch)).toHaveLength(1);
    expect(await readJsonl(join(rig.outputDir, batch, 'results.jsonl'))).toHaveLength(1);
  });

  it('writeBatchFile refuses a name with a path in it', async () => {
    await expect(writeBatchFile(rig.outputDir, 'x', '../escape.json', '{}')).rejects.toThrow(/plain file name/);
  });
});
