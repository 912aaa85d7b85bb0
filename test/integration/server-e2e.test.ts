/**
 * The callback path end to end: the simulator signs and sends callbacks to this app (listening on an ephemeral
 * port), real `upscale worker` processes create tasks with `callBackUrl` and follow them. Polls are scheduled
 * far apart (POLL_MIN_INTERVAL 5 s at ×10), so a task checked soon after it ended was checked because of its
 * callback, and each task needs about one recordInfo.
 */
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { enqueue } from '../../src/producer/index.js';
import { callbackToken } from '../../src/queue/callback-token.js';
import { submitJobId } from '../../src/queue/identity.js';
import type { BatchSummary, ResultRecord } from '../../src/results/record.js';
import { buildApp } from '../../src/server/app.js';
import { startRig, waitForBatch, type Rig } from '../helpers/pipeline.js';
import { waitFor } from '../helpers/redis.js';
import { LogSink } from './server-fixtures.js';

const HMAC_KEY = 'whk-e2e-signing-key';
const IMAGES = 40;
const POLL_MIN_MS = 5000;

describe('upscale serve with callbacks, against the simulator (×10)', () => {
  let rig: Rig;
  let app: FastifyInstance;
  const logs = new LogSink();
  let summary: BatchSummary;
  const records: ResultRecord[] = [];
  let tookMs = 0;

  beforeAll(async () => {
    rig = await startRig({
      timeScale: 10,
      // Tasks take 1 s (median) to 2 s (p95) at ×10: all of them end long before their first scheduled check.
      sim: {
        webhookHmacKey: HMAC_KEY,
        latency: {
          'topaz/image-upscale': { medianMs: 10_000, p95Ms: 20_000 },
          'recraft/crisp-upscale': { medianMs: 5_000, p95Ms: 10_000 },
        },
      },
      env: { KIE_WEBHOOK_HMAC_KEY: HMAC_KEY, POLL_MIN_INTERVAL: `${POLL_MIN_MS}ms`, POLL_MAX_INTERVAL: '8s' },
    });
    // The app runs on the rig's runtime (same Redis prefix, callback secret and HMAC key as the workers).
    app = buildApp(rig.rt, { logger: createLogger({ level: 'debug', destination: logs }) });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    await rig.startWorker([], { PUBLIC_BASE_URL: url });
    const items = Array.from({ length: IMAGES }, (_, i) => ({
      input: rig.image(`cb${i}`, 40 + (i % 5), 30 + (i % 3)),
      model: i % 4 === 0 ? 'recraft/crisp-upscale' : 'topaz/image-upscale',
      ...(i % 4 === 0 ? {} : { factor: '2' }),
    }));
    const t0 = Date.now();
    expect(await enqueue(rig.rt, items, { batchId: 'cb-e2e' })).toMatchObject({
      enqueued: IMAGES,
      rejected: [],
    });
    summary = await waitForBatch(rig.rt, 'cb-e2e', 45_000);
    tookMs = Date.now() - t0;
    for await (const r of rig.rt.store.records('cb-e2e')) records.push(r);
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await rig?.stop();
  });

  it('finishes every image with about one recordInfo per task, promoted by verified callbacks', () => {
    expect(summary.counts.succeeded).toBe(IMAGES);
    expect(records).toHaveLength(IMAGES);
    const stats = rig.sim.stats();
    expect(stats.createAccepted).toBe(IMAGES);
    expect(stats.duplicatedInputs).toEqual([]);
    expect(stats.callbacksSent).toBeGreaterThanOrEqual(IMAGES);
    expect(stats.callbacksFailed).toBe(0);
    expect(stats.queries / IMAGES).toBeLessThanOrEqual(1.5);
    const polls = records.reduce((n, r) => n + r.polls, 0);
    expect(polls / IMAGES).toBeLessThanOrEqual(1.5);
    // Checked soon after the task ended, not at the first scheduled check (POLL_MIN_INTERVAL after submission).
    const early = records.filter(
      (r) =>
        r.completedAt !== null &&
        r.submittedAt !== null &&
        r.completedAt - r.submittedAt < POLL_MIN_MS - 1000,
    );
    expect(early.length / IMAGES).toBeGreaterThanOrEqual(0.9);
    expect(tookMs).toBeLessThan(30_000);
  });

  it('/metrics shows the run: createTask calls, task durations, jobs per lane, callbacks', async () => {
    const text = await waitFor(
      async () => {
        const body = (await app.inject({ method: 'GET', url: '/metrics' })).body;
        return body.includes(`upscale_kie_calls_total{code="200",endpoint="createTask"} ${IMAGES}\n`)
          ? body
          : null;
      },
      { timeoutMs: 5000, what: 'worker counters in /metrics' },
    );
    expect(text).toContain('# TYPE upscale_kie_calls_total counter');
    expect(text).toContain('# TYPE upscale_task_duration_seconds histogram');
    expect(text).toMatch(
      /upscale_task_duration_seconds_bucket\{le="\+Inf",model="topaz\/image-upscale"\} \d+/,
    );
    expect(text).toMatch(/upscale_task_duration_seconds_count\{model="topaz\/image-upscale"\} \d+/);
    expect(text).toContain('# TYPE upscale_polls_per_task histogram');
    expect(text).toContain(`upscale_queue_jobs{lane="submit",state="completed"} ${IMAGES}`);
    expect(text).toContain('upscale_queue_jobs{lane="poll",state="delayed"} 0');
    expect(text).toContain('upscale_redis_up 1');
    const promoted = Number(/upscale_callbacks_total\{outcome="promoted"\} (\d+)/.exec(text)?.[1] ?? 0);
    expect(promoted).toBeGreaterThanOrEqual(IMAGES * 0.9);
    expect(text).not.toMatch(/outcome="rejected_(token|signature)"/);
  });

  it('/healthz is up and the batch API reports the batch', async () => {
    const health = await app.inject({ method: 'GET', url: '/healthz' });
    expect(health.statusCode).toBe(200);
    expect(health.json()).toMatchObject({
      ok: true,
      redis: 'up',
      lanes: { submit: { paused: false, reason: null } },
    });
    const batch = await app.inject({ method: 'GET', url: '/api/batches/cb-e2e' });
    expect(batch.json()).toMatchObject({ batchId: 'cb-e2e', total: IMAGES, counts: { succeeded: IMAGES } });
  });

  it('keeps the callback URL and its token out of job data and out of the dashboard', async () => {
    const tokens = records.map((r) =>
      callbackToken(rig.config.callbackSecret, submitJobId(r.jobId, r.generation)),
    );
    for (const lane of ['submit', 'poll'] as const) {
      const jobs = await rig.rt.queues[lane].getJobs(['completed', 'failed', 'waiting', 'delayed', 'active']);
      expect(jobs.length).toBeGreaterThan(0);
      const text = JSON.stringify(jobs.map((j): unknown => j.data));
      expect(text).not.toContain('/callbacks/');
      expect(text).not.toContain(rig.apiKey);
      for (const t of tokens) expect(text).not.toContain(t);
    }
    const board = await app.inject({
      method: 'GET',
      url: '/dashboard/api/queues?activeQueue=submit&status=completed',
    });
    expect(board.statusCode).toBe(200);
    expect(records.some((r) => board.body.includes(r.jobId))).toBe(true); // the board shows the jobs (a page of them)
    expect(board.body).not.toContain('/callbacks/');
    expect(board.body).not.toContain(rig.apiKey);
    for (const t of tokens) expect(board.body).not.toContain(t);
  });

  it('logs neither the API key, the HMAC key nor any callback token', () => {
    const text = logs.text();
    expect(text).toContain('/callbacks/kie/');
    expect(text).toContain('t=[redacted]');
    expect(text).not.toContain(rig.apiKey);
    expect(text).not.toContain(HMAC_KEY);
    expect(text).not.toContain(rig.config.callbackSecret);
    for (const r of records) {
      const token = callbackToken(rig.config.callbackSecret, submitJobId(r.jobId, r.generation));
      expect(text).not.toContain(token);
    }
    expect(text).not.toMatch(/[?&]t=(?!\[redacted\])/);
  });
});
