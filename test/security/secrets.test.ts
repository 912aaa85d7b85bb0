/**
 * Secrets stay in config. After a full small run with signed callbacks (a worker and `upscale serve` as real
 * processes, images by URL and one local file uploaded with the key), then a run with a wrong key (401 → submission
 * paused), none of the API key, the wrong key, the webhook HMAC key, the callback secret, any callback token or the
 * dashboard password appears in: any value under the prefix (every key SCANned and read whatever its type: BullMQ's
 * job hashes and event streams, our records, summaries, counters, pause reasons), any process' output (worker,
 * serve, and every CLI: enqueue, status, export, resume), the exports (JSONL and CSV), the dashboard's HTML and JSON
 * (batches page, /api/batches, Bull Board's API for every lane and state and a job's detail), /metrics, /healthz.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { callbackToken } from '../../src/queue/callback-token.js';
import { submitJobId } from '../../src/queue/identity.js';
import type { ResultRecord } from '../../src/results/record.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { scaledPipelineEnv } from '../../src/sim/scaled-config.js';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { makeImage } from '../helpers/images.js';
import { waitForBatch } from '../helpers/pipeline.js';
import { runUpscale, spawnUpscale, type Proc } from '../helpers/processes.js';
import { deletePrefix, freshPrefix, testRedisUrl, waitFor } from '../helpers/redis.js';
import { dumpPrefix, leaks, startServe } from './fixtures.js';

const SCALE = 20;
const hex = (n: number) => randomBytes(n).toString('hex');
const SECRETS = {
  apiKey: `sk-live-${hex(16)}`,
  wrongKey: `sk-wrong-${hex(16)}`,
  hmacKey: `whk-${hex(16)}`,
  dashboardPassword: `pw-${hex(16)}`,
};
const USER = 'ops';
const AUTH = `Basic ${Buffer.from(`${USER}:${SECRETS.dashboardPassword}`).toString('base64')}`;

describe('secrets never leave config', () => {
  const prefix = freshPrefix('sec-secrets');
  let sim: Simulator;
  let rt: Runtime;
  let serve: { proc: Proc; url: string };
  const procs: Proc[] = [];
  const outputs: string[] = [];
  const answers: string[] = [];
  let secrets: typeof SECRETS & { callbackSecret: string };
  let dir: string;
  const records: ResultRecord[] = [];

  const cli = async (args: string[], env: Record<string, string>) => {
    const r = await runUpscale(args, env);
    outputs.push(`$ upscale ${args.join(' ')} → ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sec-secrets-'));
    await chmod(dir, 0o755);
    sim = await startSimulator({ apiKeys: [SECRETS.apiKey], timeScale: SCALE, seed: 5, webhookHmacKey: SECRETS.hmacKey });
    const env = {
      ...scaledPipelineEnv({ simUrl: sim.url, apiKey: SECRETS.apiKey, timeScale: SCALE, redisUrl: testRedisUrl(), prefix }),
      KIE_WEBHOOK_HMAC_KEY: SECRETS.hmacKey,
      DASHBOARD_USER: USER,
      DASHBOARD_PASSWORD: SECRETS.dashboardPassword,
      LOG_LEVEL: 'debug',
    };
    const config = loadConfig({}, env);
    secrets = { ...SECRETS, callbackSecret: config.callbackSecret };
    rt = createRuntime(config, { log: pino({ level: 'silent' }) });
    serve = await startServe(env);
    procs.push(serve.proc);
    const workerEnv = { ...env, PUBLIC_BASE_URL: serve.url };
    const worker = spawnUpscale(['worker'], workerEnv);
    procs.push(worker);
    await waitFor(() => worker.stderr().includes('workers started'), { timeoutMs: 30_000, what: 'worker start' });

    // Phase 1: a good run with callbacks, URLs and one local file (uploaded with the key).
    const local = join(dir, 'local.png');
    await writeFile(local, await makeImage(48, 32));
    const list = join(dir, 'images.txt');
    await writeFile(list, [...Array.from({ length: 10 }, (_, i) => `${sim.url}/sim/images/sec${i}-40x30.png`), local].join('\n') + '\n');
    const enq = await cli(['enqueue', list, '--model', 'topaz/image-upscale', '--factor', '2', '--batch', 'sec-good', '--json'], workerEnv);
    expect(enq.code, enq.stderr).toBe(0);
    const summary = await waitForBatch(rt, 'sec-good', 60_000);
    expect(summary.counts.succeeded).toBe(11);
    expect(sim.stats().uploads).toBe(1); // the local file went through the upload API (with the key)
    for await (const r of rt.store.records('sec-good')) records.push(r);
    await waitFor(() => sim.stats().callbacksSent >= 11, { timeoutMs: 10_000, what: 'callbacks' });

    // Phase 2: a worker with a wrong key: 401 pauses submission with a reason.
    expect((await worker.stop('SIGTERM')).code).toBe(0);
    const wrongEnv = { ...workerEnv, KIE_API_KEY: SECRETS.wrongKey };
    const wrong = spawnUpscale(['worker'], wrongEnv);
    procs.push(wrong);
    await waitFor(() => wrong.stderr().includes('workers started'), { timeoutMs: 30_000, what: 'wrong-key worker start' });
    await cli(['enqueue', '--url', `${sim.url}/sim/images/wrong-40x30.png`, '--model', 'topaz/image-upscale', '--batch', 'sec-wrong'], wrongEnv);
    await waitFor(async () => await rt.queues.submit.isPaused(), { timeoutMs: 30_000, what: 'submission paused on 401' });
    expect(sim.stats().rejected401).toBeGreaterThan(0);
    expect(await wrong.stop('SIGTERM')).toEqual({ code: 0, signal: null });

    // Every way out: CLIs, exports, the dashboard.
    for (const args of [['status', '--json'], ['status'], ['status', '--batch', 'sec-good', '--json'], ['export', '--batch', 'sec-good', '--format', 'jsonl'], ['export', '--batch', 'sec-good', '--format', 'csv'], ['export', '--batch', 'sec-wrong']]) {
      const r = await cli(args, wrongEnv);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    }
    const paths = ['/dashboard', '/dashboard/batches', '/api/batches', '/api/batches/sec-good', '/api/batches/sec-good/export?format=jsonl', '/api/batches/sec-good/export?format=csv', '/api/batches/sec-wrong', '/metrics', '/healthz'];
    for (const lane of ['submit', 'poll']) {
      for (const status of ['latest', 'completed', 'failed', 'delayed', 'waiting', 'paused']) paths.push(`/dashboard/api/queues?activeQueue=${lane}&status=${status}`);
    }
    paths.push(`/dashboard/api/queues/submit/${records[0]!.jobId}`, `/dashboard/api/queues/poll/${records[0]!.jobId}-p`);
    for (const p of paths) {
      const res = await fetch(`${serve.url}${p}`, { headers: { authorization: AUTH } });
      expect(res.status, p).toBe(200);
      answers.push(`GET ${p}\n${await res.text()}`);
    }
  }, 150_000);

  afterAll(async () => {
    for (const p of procs) await p.stop('SIGKILL');
    await rt?.close();
    await sim?.stop();
    await deletePrefix(testRedisUrl(), prefix);
    await rm(dir, { recursive: true, force: true });
  });

  /** The secrets plus the callback token of every image (derived from the callback secret). */
  const all = () => ({
    ...secrets,
    ...Object.fromEntries(records.map((r) => [`token of ${r.jobId}`, callbackToken(secrets.callbackSecret, submitJobId(r.jobId, r.generation))])),
  });

  it('no value under the prefix holds a secret (job hashes, event streams, records, summaries, pause reasons)', async () => {
    const dump = await dumpPrefix(rt.redis, prefix);
    expect(dump.keys).toBeGreaterThan(20);
    expect(Object.keys(dump.types)).toEqual(expect.arrayContaining(['hash', 'stream', 'zset', 'string']));
    expect(dump.text).toContain('401'); // the pause reason is there, and says why
    expect(dump.text).not.toContain('/callbacks/kie/');
    expect(leaks(dump.text, all())).toEqual([]);
  });

  it('no process output holds a secret: worker, serve, and every CLI run', () => {
    const text = [...procs.map((p) => p.stdout() + p.stderr()), ...outputs].join('\n');
    expect(text).toContain('/callbacks/kie/'); // serve logged the callbacks...
    expect(text).toContain('t=[redacted]'); // ...with their tokens redacted
    expect(text).toMatch(/submission paused: kie.ai rejected the API key \(401/);
    expect(leaks(text, all())).toEqual([]);
  });

  it('the 401 pause reason and status output explain the fix without showing either key', () => {
    const status = outputs.find((o) => o.startsWith('$ upscale status --json'))!;
    expect(status).toMatch(/Fix KIE_API_KEY; the lane probes again on its own, or run `upscale resume`/);
    expect(leaks(status, secrets)).toEqual([]);
  });

  it('no export, dashboard page or API answer holds a secret', () => {
    const exports = outputs.filter((o) => o.startsWith('$ upscale export')).join('\n');
    expect(exports).toContain(records[0]!.jobId);
    const text = `${exports}\n${answers.join('\n')}`;
    expect(text).toContain('sec-good');
    expect(leaks(text, all())).toEqual([]);
  });
});
