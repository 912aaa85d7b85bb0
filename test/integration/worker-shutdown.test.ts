/**
 * `upscale worker` keeps its shutdown promise (issue 10): with every lane busy (createTask calls that never answer,
 * recordInfo calls that never answer, parked polls, result downloads that trickle for minutes, more downloads
 * queued behind them), SIGTERM with SHUTDOWN_TIMEOUT=2s ends the process with exit 0 within the deadline plus the
 * documented margin; nothing new starts after the signal; the aborted jobs are back in `waiting` with their
 * checkpoints (no attempt or try spent, no image recorded failed); no `.part` file is left (downloads are staged in
 * `OUTPUT_DIR/.staging/`, stored under their names only once verified); and stale `.part` files
 * of an earlier crash are removed when the download lane starts (live-looking recent ones are kept).
 */
import { mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_MARGIN_MS } from '../../src/cli/commands/worker.js';
import { loadConfig } from '../../src/config/index.js';
import { downloadJobId, pollJobId, submitJobId } from '../../src/queue/identity.js';
import { pollDataOf, type DownloadJobData, type PollJobData, type SubmitJobData } from '../../src/queue/job-data.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { makeImage } from '../helpers/images.js';
import { spawnUpscale, type Proc } from '../helpers/processes.js';
import { deletePrefix, freshPrefix, testRedisUrl, waitFor } from '../helpers/redis.js';
import { listenLoopback } from '../helpers/listen.js';

const TIMEOUT_MS = 2000;
const TOPAZ = 'topaz/image-upscale' as const;
const id = (n: number) => n.toString(16).padStart(24, '0');

/** kie.ai and an image host in one loopback server: createTask and recordInfo never answer, results trickle. */
class SlowWorld {
  server: Server;
  port = 0;
  counts = { createTask: 0, recordInfo: 0, results: 0, inputs: 0 };
  open = new Set<ServerResponse>();
  constructor(png: Buffer) {
    this.server = createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0] ?? '';
      if (path === '/api/v1/jobs/createTask') {
        this.counts.createTask++;
        this.open.add(res);
        req.resume();
        return; // never answers
      }
      if (path === '/api/v1/jobs/recordInfo') {
        this.counts.recordInfo++;
        this.open.add(res);
        return;
      }
      if (path.startsWith('/input/')) {
        this.counts.inputs++;
        res.writeHead(200, { 'content-type': 'image/png', 'content-length': png.length });
        res.end(png);
        return;
      }
      if (path.startsWith('/result/')) {
        // 8 MB at 64 KB per 200 ms: about 25 s per result, far past the drain deadline.
        this.counts.results++;
        this.open.add(res);
        res.writeHead(200, { 'content-type': 'image/png', 'content-length': 8 * 1024 * 1024 });
        res.write(png);
        const timer = setInterval(() => res.write(Buffer.alloc(64 * 1024)), 200);
        res.on('close', () => clearInterval(timer));
        return;
      }
      res.writeHead(404).end();
    });
  }
  async start(): Promise<string> {
    await listenLoopback(this.server);
    this.port = (this.server.address() as AddressInfo).port;
    return `http://127.0.0.1:${this.port}`;
  }
  async stop(): Promise<void> {
    for (const res of this.open) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

function partFiles(dir: string): string[] {
  const out: string[] = [];
  // Folders only: the store's probe object (.kie-upscale-probe) sits at the top of OUTPUT_DIR.
  for (const batch of existsSync(dir) ? readdirSync(dir, { withFileTypes: true }) : []) {
    if (!batch.isDirectory()) continue;
    for (const name of readdirSync(join(dir, batch.name))) if (name.endsWith('.part')) out.push(`${batch.name}/${name}`);
  }
  return out;
}

describe('upscale worker: SIGTERM with every lane busy', () => {
  const prefix = freshPrefix('shutdown');
  let world: SlowWorld;
  let base: string;
  let rt: Runtime;
  let outDir: string;
  let env: Record<string, string>;
  let proc: Proc | undefined;

  beforeAll(async () => {
    world = new SlowWorld(await makeImage(64, 48, 'png'));
    base = await world.start();
    outDir = mkdtempSync(join(tmpdir(), 'upscale-shutdown-'));
    env = {
      REDIS_URL: testRedisUrl(),
      UPSCALE_PREFIX: prefix,
      KIE_API_KEY: 'sk-shutdown-test',
      KIE_BASE_URL: base,
      KIE_UPLOAD_BASE_URL: base,
      ALLOW_PRIVATE_URLS: 'true',
      OUTPUT_DIR: outDir,
      SHUTDOWN_TIMEOUT: `${TIMEOUT_MS}ms`,
      KIE_REQUEST_TIMEOUT: '60s',
      DOWNLOAD_CONCURRENCY: '2',
      LOG_LEVEL: 'info',
    };
    rt = createRuntime(loadConfig({}, env), { log: pino({ level: 'silent' }) });
  }, 30_000);

  afterAll(async () => {
    await proc?.stop('SIGKILL');
    await rt?.close();
    await world?.stop();
    await deletePrefix(testRedisUrl(), prefix);
    rmSync(outDir, { recursive: true, force: true });
  });

  it('exits 0 within SHUTDOWN_TIMEOUT + margin, starts nothing new, gives every aborted job back, leaves no .part', async () => {
    const batchId = 'busy';
    const now = Date.now();
    const submits = [0, 1, 2].map((n) => id(0x100 + n));
    const polls = [0, 1].map((n) => id(0x200 + n));
    const parked = [0, 1].map((n) => id(0x300 + n));
    const downloads = [0, 1, 2, 3, 4, 5].map((n) => id(0x400 + n));
    const all = [...submits, ...polls, ...parked, ...downloads];
    await rt.store.createRecords(
      batchId,
      all.map((jobId) => ({ jobId, input: `${base}/input/${jobId}.png`, model: TOPAZ, factor: '2' as const })),
      now,
    );
    for (const jobId of [...polls, ...parked]) {
      await rt.store.transition(batchId, jobId, { state: 'polling', taskId: `task-${jobId}`, submittedAt: now });
    }
    for (const jobId of downloads) {
      await rt.store.transition(batchId, jobId, { state: 'polling', taskId: `task-${jobId}`, submittedAt: now });
      await rt.store.transition(batchId, jobId, { state: 'succeeded', resultUrls: [`${base}/result/${jobId}.png`], completedAt: now });
    }
    for (const jobId of submits) {
      const data: SubmitJobData = { jobId, batchId, input: `${base}/input/${jobId}.png`, model: TOPAZ, factor: '2', generation: 0 };
      await rt.queues.submit.add('submit', data, { jobId: submitJobId(jobId, 0) });
    }
    const pollOf = (jobId: string): PollJobData => ({ jobId, batchId, model: TOPAZ, taskId: `task-${jobId}`, generation: 0, submittedAt: now, deadlineAt: now + 600_000, polls: 0, errors: 0 });
    for (const jobId of polls) await rt.queues.poll.add('poll', pollOf(jobId), { jobId: pollJobId(jobId, 0) });
    for (const jobId of parked) await rt.queues.poll.add('poll', pollOf(jobId), { jobId: pollJobId(jobId, 0), delay: 600_000 });
    for (const jobId of downloads) {
      const data: DownloadJobData = { jobId, batchId, generation: 0, resultUrls: [`${base}/result/${jobId}.png`] };
      await rt.queues.download.add('download', data, { jobId: downloadJobId(jobId, 0) });
    }

    // Leftovers of an earlier crash: a stale temp file (idle 2 h) is removed at start, a fresh one is kept.
    mkdirSync(join(outDir, 'old-batch'), { recursive: true });
    const stale = join(outDir, 'old-batch', '.abc-photo.0badf00d.part');
    const fresh = join(outDir, 'old-batch', '.def-photo.1234abcd.part');
    writeFileSync(stale, Buffer.alloc(1024));
    writeFileSync(fresh, Buffer.alloc(1024));
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    utimesSync(stale, twoHoursAgo, twoHoursAgo);

    proc = spawnUpscale(['worker', '--lanes', 'submit,poll,download', '--concurrency', '4'], env);
    await waitFor(
      () => world.counts.createTask >= 3 && world.counts.recordInfo >= 2 && world.counts.results >= 2 && partFiles(outDir).filter((p) => p.startsWith('.staging/')).length >= 2,
      { timeoutMs: 60_000, what: `every lane busy (${JSON.stringify(world.counts)}; ${proc.stderr().slice(-400)})` },
    );
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(fresh)).toBe(true);
    rmSync(fresh);
    expect(world.counts.results).toBe(2); // DOWNLOAD_CONCURRENCY: four downloads wait for a slot
    const before = { ...world.counts };

    const sentAt = Date.now();
    const exit = await proc.stop('SIGTERM');
    const exitMs = Date.now() - sentAt;

    console.log(`upscale worker exited ${exitMs} ms after SIGTERM (SHUTDOWN_TIMEOUT ${TIMEOUT_MS} ms)`);
    expect(exit, proc.stderr().slice(-2000)).toEqual({ code: 0, signal: null });
    expect(exitMs, `exit ${exitMs} ms after SIGTERM`).toBeLessThan(TIMEOUT_MS + EXIT_MARGIN_MS + 1000);
    expect(exitMs).toBeGreaterThanOrEqual(TIMEOUT_MS - 100); // running work was given its time
    // Nothing new started after the signal: no queued download, no new createTask or recordInfo.
    expect(world.counts).toEqual(before);
    expect(partFiles(outDir)).toEqual([]);

    // Every aborted job is back in waiting, with its checkpoint and without a spent attempt or try.
    for (const jobId of submits) {
      const job = await rt.queues.submit.getJob(submitJobId(jobId, 0));
      expect(await job?.getState(), jobId).toBe('waiting');
      expect(job?.attemptsMade).toBe(0);
      expect(job?.data.sendingAt, 'the cut createTask is known to be ambiguous').toBeTypeOf('number');
    }
    for (const jobId of polls) {
      const job = await rt.queues.poll.getJob(pollJobId(jobId, 0));
      expect(await job?.getState(), jobId).toBe('waiting');
      expect(pollDataOf(job!).errors).toBe(0);
    }
    for (const jobId of parked) expect(await rt.queues.poll.getJobState(pollJobId(jobId, 0))).toBe('delayed');
    for (const jobId of downloads) {
      const job = await rt.queues.download.getJob(downloadJobId(jobId, 0));
      expect(await job?.getState(), jobId).toBe('waiting');
      expect((job?.data as { tries?: number }).tries ?? 0).toBe(0);
    }
    for (const jobId of all) {
      const record = await rt.store.getRecord(batchId, jobId);
      expect(['waiting', 'submitting', 'polling', 'succeeded'], `${jobId}: ${record?.state}`).toContain(record?.state);
      expect(record?.failMsg ?? null).toBeNull();
    }
    expect(proc.stderr()).toContain('drain deadline passed');
  }, 120_000);
});
