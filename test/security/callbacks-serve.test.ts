/**
 * Forged and replayed callbacks against a real, listening `upscale serve` process (KIE_WEBHOOK_HMAC_KEY set):
 * a forged, missing or borrowed token, a forged signature or one made with another key or for another task, an
 * old or future or malformed timestamp, an oversized body (declared or streamed), a path outside the receiver.
 * Each is refused, and nothing under the prefix changes (every key's DUMP compared, the metrics counters aside);
 * a genuine callback afterwards still works. The serve log never shows a token or a key.
 */
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { signWebhook } from '../../src/kie/callback.js';
import { callbackToken } from '../../src/queue/callback-token.js';
import { pollJobId, submitJobId } from '../../src/queue/identity.js';
import type { PollJobData, SubmitJobData } from '../../src/queue/job-data.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import type { Proc } from '../helpers/processes.js';
import { deletePrefix, freshPrefix, testRedisUrl, waitFor } from '../helpers/redis.js';
import { fingerprint, leaks, startServe } from './fixtures.js';

const HMAC = `whk-${randomBytes(12).toString('hex')}`;
const API_KEY = `sk-cb-${randomBytes(12).toString('hex')}`;
const JOB_A = 'a'.repeat(24);
const JOB_B = 'b'.repeat(24);
const SUBMIT_C = 'c'.repeat(24);
const TASK_A = 'task-aaaa';
const now = () => Math.floor(Date.now() / 1000);

interface Forgery {
  id?: string;
  token?: string | null;
  taskId?: string;
  /** Sign this taskId instead of the body's. */
  signedTaskId?: string;
  key?: string;
  timestamp?: string;
  signature?: string;
  body?: string | Buffer;
  chunked?: boolean;
  path?: string;
}

describe('callbacks through a listening `upscale serve`', () => {
  const prefix = freshPrefix('sec-cb');
  let rt: Runtime;
  let serve: { proc: Proc; url: string };
  let secret: string;

  /** One raw HTTP request (node:http, so a chunked body and odd paths go out exactly as written). */
  function send(f: Forgery): Promise<{ status: number; body: string }> {
    const id = f.id ?? submitJobId(JOB_A, 0);
    const token = f.token === undefined ? callbackToken(secret, id) : f.token;
    const taskId = f.taskId ?? TASK_A;
    const ts = f.timestamp ?? String(now());
    const body = f.body ?? JSON.stringify({ code: 200, msg: 'ok', data: { taskId, state: 'success', resultJson: '{"resultUrls":["https://evil.test/x.png"]}' } });
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'x-webhook-timestamp': ts,
      'x-webhook-signature': f.signature ?? signWebhook(f.signedTaskId ?? taskId, ts, f.key ?? HMAC),
    };
    if (!f.chunked) headers['content-length'] = String(Buffer.byteLength(body));
    const path = f.path ?? `/callbacks/kie/${id}${token === null ? '' : `?t=${encodeURIComponent(token)}`}`;
    return new Promise((resolve, reject) => {
      const req = request(`${serve.url}${path}`, { method: 'POST', headers }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' || e.code === 'EPIPE' ? resolve({ status: 413, body: 'reset' }) : reject(e)));
      if (f.chunked) {
        const piece = Buffer.isBuffer(body) ? body : Buffer.from(body);
        for (let i = 0; i < piece.length; i += 16 * 1024) req.write(piece.subarray(i, i + 16 * 1024));
        req.end();
      } else req.end(body);
    });
  }

  const snapshot = () => fingerprint(rt.redis, prefix, (k) => k === rt.store.keys.counters);

  beforeAll(async () => {
    const env = { REDIS_URL: testRedisUrl(), UPSCALE_PREFIX: prefix, KIE_API_KEY: API_KEY, KIE_WEBHOOK_HMAC_KEY: HMAC, LOG_LEVEL: 'debug' };
    const config = loadConfig({}, env);
    secret = config.callbackSecret;
    rt = createRuntime(config, { log: pino({ level: 'silent' }) });
    const poll: PollJobData = { jobId: JOB_A, batchId: 'sec', model: 'topaz/image-upscale', taskId: TASK_A, generation: 0, submittedAt: Date.now(), deadlineAt: Date.now() + 3_600_000, polls: 1, errors: 0 };
    await rt.queues.poll.add('poll', poll, { jobId: pollJobId(JOB_A, 0), delay: 3_600_000 });
    // A submit job whose taskId was lost: a forged callback must not attach a task of the attacker's choosing.
    const submit: SubmitJobData = { jobId: SUBMIT_C, batchId: 'sec', input: 'https://img.test/c.png', model: 'topaz/image-upscale', factor: '2', generation: 0, sendingAt: Date.now() };
    await rt.queues.submit.add('submit', submit, { jobId: submitJobId(SUBMIT_C, 0), delay: 3_600_000 });
    serve = await startServe(env, ['--no-dashboard']);
  }, 60_000);

  afterAll(async () => {
    await serve?.proc.stop('SIGKILL');
    await rt?.close();
    await deletePrefix(testRedisUrl(), prefix);
  });

  const huge = JSON.stringify({ code: 200, data: { taskId: TASK_A, pad: 'x'.repeat(200_000) } });
  const forgeries: [string, Forgery, number][] = [
    ['a forged token', { token: randomBytes(24).toString('base64url').slice(0, 32) }, 401],
    ['no token', { token: null }, 401],
    ['an empty token', { token: '' }, 401],
    ['a token one character off', { token: 'X' }, 401], // replaced below by the real token with its last character changed
    ['the token of another job', { token: 'other' }, 401], // replaced below
    ['a token for the job made with another secret', { token: callbackToken('not-the-secret', submitJobId(JOB_A, 0)) }, 401],
    ['a forged signature', { signature: randomBytes(32).toString('base64') }, 401],
    ['a signature made with another key', { key: 'whk-guessed' }, 401],
    ['a signature of another task (body swapped)', { signedTaskId: 'task-other' }, 401],
    ['no signature', { signature: '' }, 401],
    ['a replayed callback (timestamp 10 min old)', { timestamp: String(now() - 600) }, 401],
    ['a timestamp 10 min ahead', { timestamp: String(now() + 600) }, 401],
    ['a timestamp that is not Unix seconds', { timestamp: '2026-01-01T00:00:00Z' }, 401],
    ['a forged re-attach to a submit job without a taskId', { id: submitJobId(SUBMIT_C, 0), token: 'forged-token-for-c', taskId: 'task-attacker' }, 401],
    ['an oversized body (declared)', { body: huge }, 413],
    ['an oversized body (chunked, no length)', { body: huge, chunked: true }, 413],
    ['an id that is not a job id', { id: '..%2F..%2Fdashboard' }, 401],
    ['a path outside the receiver', { path: '/callbacks/kie/../../api/batches' }, 404],
  ];

  it.each(forgeries)('%s is refused and changes nothing', async (name, forgery, status) => {
    const f = { ...forgery };
    if (name === 'a token one character off') {
      const real = callbackToken(secret, submitJobId(JOB_A, 0));
      f.token = real.slice(0, -1) + (real.endsWith('A') ? 'B' : 'A');
    }
    if (name === 'the token of another job') f.token = callbackToken(secret, submitJobId(JOB_B, 0));
    const before = await snapshot();
    const res = await send(f);
    expect(res.status).toBe(status);
    expect(await snapshot()).toEqual(before);
    expect(await rt.queues.poll.getJobState(pollJobId(JOB_A, 0))).toBe('delayed');
    const submit = await rt.queues.submit.getJob(submitJobId(SUBMIT_C, 0));
    expect(submit?.data).not.toHaveProperty('taskId');
  });

  it('counts the refusals by kind in /metrics-bound counters, and a genuine callback still promotes the job', async () => {
    // serve flushes its counters about once a second, so the refusals may arrive over several flushes.
    const count = (h: Record<string, string>, o: string) => Number(Object.entries(h).find(([k]) => k.includes(`"${o}"`))?.[1] ?? 0);
    const enough = (h: Record<string, string>) =>
      count(h, 'rejected_token') >= 8 && count(h, 'rejected_signature') >= 7 && count(h, 'too_large') >= 1;
    const counters = await waitFor(async () => {
      const h = await rt.redis.hgetall(rt.store.keys.counters);
      return enough(h) ? h : null;
    }, { timeoutMs: 10_000, what: 'serve to flush all its refusal counters' });
    expect(count(counters, 'rejected_token')).toBeGreaterThanOrEqual(8);
    expect(count(counters, 'rejected_signature')).toBeGreaterThanOrEqual(7);
    expect(count(counters, 'too_large')).toBeGreaterThanOrEqual(1);
    const res = await send({});
    expect(res.status).toBe(200);
    expect(await rt.queues.poll.getJobState(pollJobId(JOB_A, 0))).toBe('waiting');
    // Replaying the genuine callback within the tolerance is harmless: answered 200, nothing changes.
    const before = await snapshot();
    expect((await send({})).status).toBe(200);
    expect(await snapshot()).toEqual(before);
  });

  it('logs every refusal without a token, the API key or the HMAC key', () => {
    const log = serve.proc.stderr() + serve.proc.stdout();
    expect(log).toContain('callback refused: bad token');
    expect(log).toContain('callback refused: bad signature');
    const tokens = [JOB_A, JOB_B, SUBMIT_C].map((j) => callbackToken(secret, submitJobId(j, 0)));
    expect(leaks(log, { apiKey: API_KEY, hmac: HMAC, callbackSecret: secret, ...Object.fromEntries(tokens.map((t, i) => [`token${i}`, t])) })).toEqual([]);
  });
});
