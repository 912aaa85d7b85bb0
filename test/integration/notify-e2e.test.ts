/**
 * Notifications end to end with real worker processes: a loopback receiver verifies every Standard Webhooks
 * signature and counts events while two workers run a batch, one of them is SIGKILLed mid-batch, and the receiver
 * refuses its first deliveries. Each event arrives (at least once), once per occurrence by id; the finalizer
 * writes one set of files; `upscale status --json` shows the delivery.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enqueueLines } from '../../src/producer/index.js';
import { startRig, type Rig } from '../helpers/pipeline.js';
import { runUpscale } from '../helpers/processes.js';
import { waitFor } from '../helpers/redis.js';
import { startReceiver, type Receiver } from '../helpers/webhook-receiver.js';

const SECRET = `whsec_${randomBytes(24).toString('base64')}`;
let rig: Rig;
let receiver: Receiver;
let outputDir: string;

beforeAll(async () => {
  receiver = await startReceiver(SECRET);
  outputDir = await mkdtemp(join(tmpdir(), 'upscale-notify-'));
  rig = await startRig({ timeScale: 20, env: { NOTIFY_URL: receiver.url, NOTIFY_SECRET: SECRET, OUTPUT_DIR: outputDir } });
});
afterAll(async () => {
  await rig?.stop();
  await receiver?.close();
  await rm(outputDir, { recursive: true, force: true });
});

describe('notifications with two workers and a SIGKILL', () => {
  it('delivers one signed batch.completed per batch, retried past refusals, and status shows it delivered', async () => {
    const first = await rig.startWorker();
    await rig.startWorker();
    receiver.failNext(2, 503);
    const batches = ['nt-a', 'nt-b'];
    for (const [n, batchId] of batches.entries()) {
      const lines = Array.from({ length: 30 }, (_, i) => ({ line: i + 1, input: rig.image(`n${n}-${i}`, 64, 48) }));
      await enqueueLines(rig.rt, lines, { batchId, model: 'topaz/image-upscale', factor: '2' });
    }
    await waitFor(async () => ((await rig.rt.store.getSummary('nt-a'))?.counts.succeeded ?? 0) >= 5, { timeoutMs: 60_000, what: 'some images done' });
    await first.stop('SIGKILL');
    await rig.startWorker();

    const completed = () => receiver.accepted().filter((r) => r.json.type === 'batch.completed');
    await waitFor(async () => {
      const s = await Promise.all(batches.map((b) => rig.rt.store.getSummary(b)));
      return s.every((x) => x?.finishedAt) ? s : null;
    }, { timeoutMs: 120_000, intervalMs: 500, what: 'both batches done' }).catch(async (e: unknown) => {
      console.log(JSON.stringify(await Promise.all(batches.map((b) => rig.rt.store.getSummary(b)))), receiver.received.length);
      throw e;
    });
    await waitFor(() => new Set(completed().map((r) => r.json.batchId)).size === 2, { timeoutMs: 120_000, intervalMs: 200, what: 'both batch.completed events' });
    await waitFor(async () => (await rig.rt.redis.zcard(rig.rt.store.keys.notifyDue)) === 0, { timeoutMs: 30_000, what: 'the outbox to drain' });

    // Every request was signed and verified; each occurrence has one id, whatever arrived more than once.
    expect(receiver.received.every((r) => r.verified)).toBe(true);
    expect(receiver.received.slice(0, 2).map((r) => r.status)).toEqual([503, 503]);
    const ids = completed().map((r) => r.id);
    expect(new Set(ids)).toEqual(new Set(batches.map((b) => `evt.batch.completed.${b}.0`)));
    for (const batchId of batches) {
      const event = completed().find((r) => r.json.batchId === batchId);
      expect(event?.json.data).toMatchObject({ total: 30, resultsAt: join(outputDir, batchId) });
      expect(event?.headers['webhook-signature']).toMatch(/^v1,/);
      // The finalizer wrote one set of files, beside the downloaded images.
      const files = await readdir(join(outputDir, batchId));
      expect(files.filter((f) => f === 'results.jsonl' || f === 'summary.json').sort()).toEqual(['results.jsonl', 'summary.json']);
      // (a download cut by the SIGKILL may leave its own .part; the batch files never do)
      expect(files.filter((f) => /^\.(results\.jsonl|summary\.json)\..*\.part$/.test(f))).toEqual([]);
      const lines = (await readFile(join(outputDir, batchId, 'results.jsonl'), 'utf8')).split('\n').filter(Boolean);
      expect(lines).toHaveLength(30);
      expect(lines.every((l) => (JSON.parse(l) as { state: string }).state === 'succeeded')).toBe(true);
    }

    const status = await runUpscale(['status', '--batch', 'nt-a', '--json'], rig.env);
    expect(status.code).toBe(0);
    const json = JSON.parse(status.stdout) as { finalizedAt: number | null; notifications: { recent: { type: string; delivered: number; pending: number }[] } };
    expect(json.finalizedAt).not.toBeNull();
    expect(json.notifications.recent.find((e) => e.type === 'batch.completed')).toMatchObject({ delivered: 1, pending: 0 });
    const human = await runUpscale(['status'], rig.env);
    expect(human.stdout).toMatch(/notifications: 1 target · 0 deliveries pending/);
    expect(human.stdout).toMatch(/batch\.completed nt-a .* delivered/);
  }, 240_000);
});
