/**
 * The download lane storing into S3 (s3rver on loopback behind a fault proxy, test/helpers/s3-server.ts), through
 * the whole pipeline against the simulator: names from OUTPUT_NAME with a CSV-like `sku`, the sha256 in the
 * object's metadata and the record, a server error on each first upload (retried by the SDK), a re-run that finds
 * the objects and uploads nothing, and wrong credentials from the AWS chain (the lane pauses with the reason, no
 * try is spent, nothing is lost; with the right credentials the workers' start probe resumes the lane and everything is stored; a store that goes away mid-batch pauses the lane without spending tries and resumes on its own).
 */
import { createHash, randomBytes } from 'node:crypto';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { retryDownloads } from '../../src/control/index.js';
import { renderLifecycle } from '../../src/results/status-view.js';
import { enqueue } from '../../src/producer/index.js';
import { downloadJobId } from '../../src/queue/identity.js';
import { getPauseReason } from '../../src/queue/pause-reason.js';
import { Readable } from 'node:stream';
import { createLogger } from '../../src/log.js';
import { openStorage } from '../../src/storage/index.js';
import { laneStatus } from '../../src/queue/lane-status.js';
import { waitFor } from '../helpers/redis.js';
import { S3RVER_CREDENTIALS, startFaultProxy, startS3Server, type FaultProxy, type S3TestServer } from '../helpers/s3-server.js';
import { startLocalRig, waitForRecords, type LocalRig } from './preflight-fixtures.js';
import { imageId, startBench } from './server-fixtures.js';

const TOPAZ = 'topaz/image-upscale';
let s3: S3TestServer;
let proxy: FaultProxy;
let rig: LocalRig | undefined;

/** The AWS chain reads the environment: what a deployment sets. Never the instance metadata service here. */
function useCredentials(secretAccessKey: string) {
  process.env.AWS_ACCESS_KEY_ID = S3RVER_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = secretAccessKey;
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
}

async function getObject(key: string) {
  const client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: S3RVER_CREDENTIALS });
  const got = await client.send(new GetObjectCommand({ Bucket: 'outputs', Key: key }));
  const body = Buffer.from(await got.Body!.transformToByteArray());
  client.destroy();
  return { body, metadata: got.Metadata, contentType: got.ContentType };
}

function s3Env(extra: Record<string, string> = {}) {
  return { OUTPUT_URL: 's3://outputs/runs', OUTPUT_DIR: '', S3_ENDPOINT: proxy.endpoint, S3_REGION: 'us-east-1', S3_FORCE_PATH_STYLE: 'true', ...extra };
}

beforeAll(async () => {
  s3 = await startS3Server(['outputs']);
  proxy = await startFaultProxy(s3.endpoint);
});
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
});
afterAll(async () => {
  await proxy?.stop();
  await s3?.stop();
  for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_EC2_METADATA_DISABLED']) delete process.env[k];
});

const puts = (key: string) => proxy.seen.filter((r) => (r.method === 'PUT' || r.method === 'POST') && r.url.startsWith(`/outputs/runs/${key}`));

describe('download lane into S3', () => {
  it('names results by OUTPUT_NAME, stores them with their sha256 after a server error, and a re-run uploads nothing', async () => {
    useCredentials(S3RVER_CREDENTIALS.secretAccessKey);
    proxy.seen.length = 0;
    // The first upload of every object fails with a 500: the SDK tries again.
    proxy.rule = (req, seen) => (req.method === 'PUT' && !seen.some((r) => r.url === req.url) ? '500' : 'pass');
    rig = await startLocalRig({ env: s3Env({ OUTPUT_NAME: 'catalogue/{sku}-{w}x{h}.{ext}' }) });
    await rig.start();
    const items = [
      { input: rig.image('sunset', 64, 48, 'png'), meta: { sku: 'SKU-1' } },
      { input: rig.image('beach', 50, 40, 'jpg'), meta: { sku: 'SKU-2' }, factor: 4 },
    ];
    const result = await enqueue(rt(), items, { model: TOPAZ, batchId: 's3-ok' });
    expect(result).toMatchObject({ enqueued: 2, rejected: [] });
    const records = await waitForRecords(rt(), 's3-ok', { downloads: true });
    const expected = { 'SKU-1': 'catalogue/SKU-1-128x96.png', 'SKU-2': 'catalogue/SKU-2-200x160.jpg' } as Record<string, string>;
    for (const r of records) {
      const key = expected[r.meta.sku!]!;
      expect(r).toMatchObject({ state: 'succeeded', failMsg: null, outputPath: null, outputUrl: `s3://outputs/runs/${key}` });
      const obj = await getObject(`runs/${key}`);
      expect(r.sha256).toBe(createHash('sha256').update(obj.body).digest('hex'));
      expect(obj.metadata).toEqual({ sha256: r.sha256 });
      expect(obj.contentType).toBe(key.endsWith('png') ? 'image/png' : 'image/jpeg');
      const size = await sharp(obj.body).metadata();
      expect(key).toContain(`${size.width}x${size.height}`);
      expect(puts(key).map((p) => p.fault)).toEqual(['500', 'pass']);
    }
    expect(JSON.stringify(records)).not.toContain(S3RVER_CREDENTIALS.secretAccessKey + '"');
    // Thumbnails for the batch page, stored beside the results.
    for (const r of records) {
      for (const f of ['in.webp', 'in-small.webp', 'out.webp', 'out-small.webp']) {
        const thumb = await getObject(`runs/s3-ok/.thumbs/${r.jobId}-${f}`);
        expect((await sharp(thumb.body).metadata()).format, f).toBe('webp');
      }
    }
    // The finalizer's files go to the same place: the bucket, under the batch's folder (after a 500 each, retried).
    const summary = await waitFor(
      async () => {
        const s = await rt().store.getSummary('s3-ok');
        return s?.finalizedAt ? s : null;
      },
      { timeoutMs: 30_000, what: 'batch finalized' },
    );
    expect(summary.resultsAt).toBe('s3://outputs/runs/s3-ok');
    const jsonl = (await getObject('runs/s3-ok/results.jsonl')).body.toString('utf8').trim().split('\n');
    expect(jsonl.map((l) => (JSON.parse(l) as { outputUrl: string }).outputUrl).sort()).toEqual(records.map((r) => r.outputUrl).sort());
    const summaryFile = await getObject('runs/s3-ok/summary.json');
    expect(summaryFile.contentType).toBe('application/json');
    expect(JSON.parse(summaryFile.body.toString('utf8'))).toMatchObject({ batchId: 's3-ok', resultsAt: 's3://outputs/runs/s3-ok', records: 2 });
    expect(puts('s3-ok/summary.json').map((p) => p.fault)).toEqual(['500', 'pass']);

    // Re-runs: one with its record intact (nothing fetched or stored), one whose record lost the output (as after a
    // crash between the upload and the record): fetched again, found in the bucket with the same sha256, not uploaded.
    const before = proxy.seen.length;
    const [kept, lost] = records;
    await rt().store.transition('s3-ok', lost!.jobId, { outputUrl: null, outputPath: null, sha256: null });
    for (const r of [kept!, lost!]) {
      await rt().queues.download.add('download', { jobId: r.jobId, batchId: 's3-ok', generation: 0, resultUrls: r.resultUrls }, { jobId: `${downloadJobId(r.jobId, 0)}-again` });
    }
    await waitFor(async () => ((await rt().queues.download.getJobCounts('completed')).completed ?? 0) >= 4, { timeoutMs: 30_000, what: 're-runs' });
    const again = await rt().store.getRecord('s3-ok', lost!.jobId);
    expect(again).toMatchObject({ outputUrl: lost!.outputUrl, sha256: lost!.sha256 });
    const rerunRequests = proxy.seen.slice(before);
    expect(rerunRequests.filter((r) => r.method !== 'HEAD')).toEqual([]);
    expect(rerunRequests.filter((r) => r.method === 'HEAD').length).toBeGreaterThanOrEqual(2);
  });

  it('wrong credentials: the lane pauses with the reason and spends no try; fixed and resumed, everything is stored', async () => {
    const wrong = `wrong-${randomBytes(8).toString('hex')}`;
    useCredentials(wrong);
    proxy.rule = () => 'pass';
    // The real logger (with its redaction), writing into memory: what an operator's log would hold.
    const logged: string[] = [];
    const log = createLogger({ level: 'debug', destination: { write: (line: string) => void logged.push(line) } });
    rig = await startLocalRig({ env: s3Env({ DOWNLOAD_RETRIES: '1' }), log });
    await rig.start();
    // Checked at worker start (one probe write), before any image: the lane is paused already, the worker runs.
    const reason = await getPauseReason(rt().redis, rt().store.keys, 'download');
    expect(reason?.code).toBe('storage');
    expect(reason?.probe?.kind).toBe('store');
    expect(reason?.message).toMatch(
      /^cannot write s3:\/\/outputs\/runs\/\.kie-upscale-probe: the store refused the credentials or permissions( \(SignatureDoesNotMatch: .*\))? \(HTTP 403\)\. Fix the credentials or permissions; the lane resumes on its own once a probe write works \(or run `upscale resume --lanes download`\)\.$/,
    );
    expect(rig.workers).toBeTruthy();
    const items = ['a', 'b', 'c'].map((n) => ({ input: rig!.image(n, 32, 32, 'png') }));
    await enqueue(rt(), items, { model: TOPAZ, batchId: 's3-auth' });
    expect(JSON.stringify(reason)).not.toContain(wrong);
    // The lane status that `upscale status`, the dashboard and /healthz show carries the same reason, no secret.
    const lanes = await laneStatus(rt());
    expect(lanes.download).toMatchObject({ paused: true, reason: { code: 'storage' } });
    expect(JSON.stringify(lanes)).not.toContain(wrong);
    expect(logged.some((l) => l.includes('downloads paused: cannot'))).toBe(true);
    expect(logged.join('')).not.toContain(wrong);
    expect(await rt().queues.download.isPaused()).toBe(true);
    // Every image succeeded at kie and waits for its download: none failed, no try spent (DOWNLOAD_RETRIES=1).
    // A paused queue keeps its jobs in waiting (BullMQ 6).
    await waitFor(async () => (await rt().queues.download.getJobCounts('waiting')).waiting === 3, {
      timeoutMs: 60_000,
      what: 'three download jobs back to waiting',
    });
    const records = await waitForRecords(rt(), 's3-auth');
    for (const r of records) expect(r).toMatchObject({ state: 'succeeded', outputUrl: null, failMsg: null });

    // The operator fixes the credentials and restarts the workers: their start probe works and lifts the pause.
    await rig.workers!.close(3000);
    useCredentials(S3RVER_CREDENTIALS.secretAccessKey);
    await rig.start();
    expect(await getPauseReason(rt().redis, rt().store.keys, 'download')).toBeNull();
    expect(await rt().queues.download.isPaused()).toBe(false);
    const stored = await waitForRecords(rt(), 's3-auth', { downloads: true });
    expect(logged.join('')).not.toContain(wrong);
    for (const r of stored) {
      expect(r.failMsg).toBeNull();
      expect(r.outputUrl).toMatch(new RegExp(`^s3://outputs/runs/s3-auth/${r.jobId}-[abc]-32x32\\.png$`));
      const obj = await getObject(r.outputUrl!.slice('s3://outputs/'.length));
      expect(createHash('sha256').update(obj.body).digest('hex')).toBe(r.sha256);
    }
  });
});

describe('the store going away mid-batch', () => {
  it('a store that refuses connections pauses the lane, spends no try, and resumes on its own; missing outputs are counted and fetched again', async () => {
    useCredentials(S3RVER_CREDENTIALS.secretAccessKey);
    proxy.rule = () => 'pass';
    // DOWNLOAD_RETRIES=2 and fast backoff: before, an outage spent every image's tries within seconds.
    rig = await startLocalRig({ env: s3Env({ DOWNLOAD_RETRIES: '2', RETRY_BACKOFF: '50ms', PROBE_COOLDOWN: '1s', OUTPUT_NAME: '{batchId}/{sku}.{ext}' }) });
    await rig.start();
    expect(await getPauseReason(rt().redis, rt().store.keys, 'download')).toBeNull();
    // The store goes away: every connection is cut (as ECONNREFUSED / ECONNRESET while it restarts).
    proxy.rule = () => 'reset';
    const items = Array.from({ length: 6 }, (_, i) => ({ input: rig!.image(`dn-${i}`, 24, 24, 'png'), meta: { sku: `DN-${i}` } }));
    await enqueue(rt(), items, { model: TOPAZ, batchId: 's3-down' });
    const reason = await waitFor(() => getPauseReason(rt().redis, rt().store.keys, 'download'), { timeoutMs: 60_000, what: 'download lane paused' });
    expect(reason).toMatchObject({ code: 'storage', source: 'download', probe: { kind: 'store' } });
    expect(reason.message).toMatch(/^cannot (read|write) s3:\/\/outputs\/runs\/s3-down\/DN-\d\.png: .*the store is unreachable or failing, not the image\. The lane resumes on its own/);
    // Well past the time DOWNLOAD_RETRIES × backoff would take: no image was given up, the batch is not finished.
    await waitFor(async () => ((await getPauseReason(rt().redis, rt().store.keys, 'download'))?.probe?.tries ?? 0) >= 2 ? true : null, { timeoutMs: 30_000, what: 'two failed store probes' });
    const during = await waitForRecords(rt(), 's3-down');
    for (const r of during) expect(r).toMatchObject({ state: 'succeeded', download: 'pending', failMsg: null, outputProblem: null });
    const mid = await rt().store.getSummary('s3-down');
    expect(mid).toMatchObject({ downloadsPending: 6, downloadsFailed: 0, finalizedAt: null });

    // The store is back: a probe write works and the lane resumes by itself (no `upscale resume`).
    proxy.rule = () => 'pass';
    const stored = await waitForRecords(rt(), 's3-down', { downloads: true, timeoutMs: 60_000 });
    expect(await getPauseReason(rt().redis, rt().store.keys, 'download')).toBeNull();
    for (const r of stored) expect(r).toMatchObject({ download: 'done', failMsg: null, outputUrl: `s3://outputs/runs/s3-down/${r.meta.sku}.png` });
    const done = await waitFor(async () => ((await rt().store.getSummary('s3-down'))?.finalizedAt ? rt().store.getSummary('s3-down') : null), { timeoutMs: 30_000, what: 'finalized' });
    expect(done).toMatchObject({ downloadsPending: 0, downloadsFailed: 0 });

    // An output lost for the image's own reasons (as a download given up after its tries writes it): counted,
    // shown by status and the batches page, and fetched again by `upscale retry --batch ID --downloads`.
    const lost = stored[0]!;
    await rt().store.transition('s3-down', lost.jobId, { outputUrl: null, outputPath: null, sha256: null, outputProblem: 'the result URL answered HTTP 404', failMsg: 'task succeeded but the download failed after 2 tries', download: 'failed' });
    const missing = (await rt().store.getSummary('s3-down'))!;
    expect(missing.downloadsFailed).toBe(1);
    expect(renderLifecycle(missing, undefined, Date.now()).join('\n')).toContain('1 output MISSING: download failed (outputProblem in the records) · fetch again: upscale retry --batch s3-down --downloads');
    expect(await retryDownloads(rt(), 's3-down')).toEqual({ queued: 1, skipped: 5 });
    await waitFor(async () => ((await rt().store.getRecord('s3-down', lost.jobId))?.download === 'done' ? true : null), { timeoutMs: 30_000, what: 'fetched again' });
    expect(await rt().store.getRecord('s3-down', lost.jobId)).toMatchObject({ outputUrl: lost.outputUrl, sha256: lost.sha256, outputProblem: null, failMsg: null });
    const again = await waitFor(async () => ((await rt().store.getSummary('s3-down'))?.finalizedAt ? rt().store.getSummary('s3-down') : null), { timeoutMs: 30_000, what: 'finalized again' });
    expect(again).toMatchObject({ downloadsFailed: 0, downloadsPending: 0, epoch: 1 });
    expect(await retryDownloads(rt(), 's3-down')).toEqual({ queued: 0, skipped: 6 });
  });
});

describe('dashboard thumbnails from S3', () => {
  it('the batch page lists and serves the thumbnails the workers stored in the bucket; a refused read says why, no secret', async () => {
    useCredentials(S3RVER_CREDENTIALS.secretAccessKey);
    proxy.rule = () => 'pass';
    const bench = await startBench(s3Env());
    try {
      const jobId = imageId(7);
      await bench.rt.store.createRecords('s3-page', [{ jobId, input: 'https://img.test/a.png', model: TOPAZ, factor: '2', line: 2 }]);
      await bench.rt.store.transition('s3-page', jobId, { state: 'succeeded', completedAt: 1000, outputUrl: `s3://outputs/runs/s3-page/${jobId}-a.png` });
      const webp = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#f00' } }).webp().toBuffer();
      const storage = (await openStorage(bench.rt.config))!;
      for (const f of ['in-small.webp', 'out-small.webp', 'out.webp']) await storage.put(`s3-page/.thumbs/${jobId}-${f}`, Readable.from([webp]), { contentType: 'image/webp' });
      storage.close();
      const get = (url: string) => bench.app.inject({ method: 'GET', url });
      const page = await get('/dashboard/batches/s3-page');
      expect(page.statusCode).toBe(200);
      expect(page.body).toContain(`thumbs/${jobId}/out-small.webp`);
      expect(page.body).toContain(`${jobId}-a.png`); // the stored object's name in the output column
      const thumb = await get(`/dashboard/batches/s3-page/thumbs/${jobId}/out.webp`);
      expect(thumb.statusCode).toBe(200);
      expect(thumb.headers['content-type']).toBe('image/webp');
      expect(thumb.rawPayload.equals(webp)).toBe(true);
      expect((await get(`/dashboard/batches/s3-page/thumbs/${jobId}/in.webp`)).statusCode).toBe(404);
    } finally {
      await bench.close();
    }
    const wrong = `wrong-${randomBytes(8).toString('hex')}`;
    useCredentials(wrong);
    const refused = await startBench(s3Env());
    try {
      const res = await refused.app.inject({ method: 'GET', url: `/dashboard/batches/s3-page/thumbs/${imageId(7)}/out.webp` });
      expect(res.statusCode).toBe(502);
      expect(res.json().error).toMatch(/^thumbnail unavailable: cannot read s3:\/\/outputs\/runs\/s3-page\/\.thumbs\/.*the store refused the credentials/);
      expect(res.body).not.toContain(wrong);
    } finally {
      await refused.close();
    }
  });
});

function rt() {
  return rig!.rt;
}
