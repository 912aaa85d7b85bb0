/**
 * The dashboard of a real, listening `upscale serve` process: with DASHBOARD_USER/DASHBOARD_PASSWORD set, nothing
 * of it answers without the right credentials (including path and method tricks), and write actions are off by
 * default (Bull Board's retry/clean/obliterate/add refused, the jobs untouched); `--dashboard-write` allows retry
 * and clean only. The password never shows in a log or an answer.
 */
import { randomBytes } from 'node:crypto';
import { Worker } from 'bullmq';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { createRedis } from '../../src/queue/connection.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import type { Proc } from '../helpers/processes.js';
import { deletePrefix, freshPrefix, testRedisUrl } from '../helpers/redis.js';
import { fingerprint, leaks, startServe } from './fixtures.js';

const USER = 'ops';
const PASSWORD = `pw-${randomBytes(12).toString('hex')}`;
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const GOOD = basic(USER, PASSWORD);

/** Every dashboard URL: Bull Board's UI and API, the batches page and the batch API. */
const GUARDED = [
  '/dashboard',
  '/dashboard/',
  '/dashboard/batches',
  '/dashboard/queue/submit',
  '/dashboard/api/queues',
  '/dashboard/api/queues?activeQueue=submit&status=failed',
  '/dashboard/api/queues/submit/job-1',
  '/api/batches',
  '/api/batches/sec-batch',
  '/api/batches/sec-batch/export?format=csv',
];

describe('dashboard of a listening `upscale serve`', () => {
  const prefix = freshPrefix('sec-dash');
  let rt: Runtime;
  let ro: { proc: Proc; url: string };
  let rw: { proc: Proc; url: string };
  let env: Record<string, string>;

  beforeAll(async () => {
    env = { REDIS_URL: testRedisUrl(), UPSCALE_PREFIX: prefix, KIE_API_KEY: `sk-${randomBytes(8).toString('hex')}`, DASHBOARD_USER: USER, DASHBOARD_PASSWORD: PASSWORD, LOG_LEVEL: 'debug' };
    rt = createRuntime(loadConfig({}, env), { log: pino({ level: 'silent' }) });
    await rt.store.createRecords('sec-batch', [{ jobId: 'f'.repeat(24), input: 'https://img.test/1.png', model: 'topaz/image-upscale', factor: '2' }]);
    await rt.queues.submit.add('submit', { jobId: 'job-1', batchId: 'sec-batch' }, { jobId: 'job-1', attempts: 1 });
    const connection = createRedis(rt.config.redisUrl, 'worker');
    const taker = new Worker('submit', null, { connection, prefix, autorun: false });
    const job = await taker.getNextJob('seed', { block: false });
    await job.moveToFailed(new Error('seeded failure'), 'seed', false);
    await taker.close(true);
    connection.disconnect();
    expect(await rt.queues.submit.getJobState('job-1')).toBe('failed');
    [ro, rw] = await Promise.all([startServe(env), startServe(env, ['--dashboard-write'])]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([ro?.proc.stop('SIGKILL'), rw?.proc.stop('SIGKILL')]);
    await rt?.close();
    await deletePrefix(testRedisUrl(), prefix);
  });

  const get = (base: string, path: string, authorization?: string) =>
    fetch(`${base}${path}`, { headers: authorization ? { authorization } : {}, redirect: 'manual' });

  it.each(GUARDED)('%s: 401 without or with wrong credentials, 200 with the right ones', async (path) => {
    for (const auth of [undefined, basic(USER, 'wrong'), basic('admin', PASSWORD), basic(USER, `${PASSWORD}x`), `Bearer ${PASSWORD}`, 'Basic', 'Basic !!!', `Basic ${Buffer.from(`${USER}${PASSWORD}`).toString('base64')}`]) {
      const res = await get(ro.url, path, auth);
      expect(res.status, `${path} with ${auth ?? 'nothing'}`).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
      expect(await res.text()).not.toContain('sec-batch');
    }
    expect((await get(ro.url, path, GOOD)).status).toBe(200);
  });

  it.each(['/Dashboard/api/queues', '//dashboard/api/queues', '/dashboard/../api/batches', '/dashboard%2Fapi%2Fqueues', '/api/batches/..%2F..%2Fdashboard', '/dashboard/api/queues/../../../api/batches'])(
    'a path trick (%s) gets no data without credentials',
    async (path) => {
      const res = await get(ro.url, path);
      expect([401, 404]).toContain(res.status);
      const text = await res.text();
      expect(text).not.toContain('sec-batch');
      expect(text).not.toContain('job-1');
    },
  );

  it('write actions are off by default, even with credentials: retry, clean, obliterate, add all refused; nothing changes', async () => {
    const before = await fingerprint(rt.redis, prefix);
    for (const [method, path] of [
      ['PUT', '/dashboard/api/queues/submit/retry/failed'],
      ['PUT', '/dashboard/api/queues/submit/job-1/retry'],
      ['PUT', '/dashboard/api/queues/submit/clean/failed'],
      ['PUT', '/dashboard/api/queues/submit/obliterate'],
      ['PUT', '/dashboard/api/queues/submit/pause'],
      ['POST', '/dashboard/api/queues/submit/add'],
      ['DELETE', '/dashboard/api/queues/submit/job-1'],
    ] as const) {
      const body = method === 'DELETE' ? {} : { body: '{}', headers: { 'content-type': 'application/json' } };
      const anon = await fetch(`${ro.url}${path}`, { method, ...body });
      expect(anon.status === 401 || (method === 'DELETE' && anon.status === 404), `${method} ${path} anonymous: ${anon.status}`).toBe(true);
      const res = await fetch(`${ro.url}${path}`, { method, ...body, headers: { ...body.headers, authorization: GOOD } });
      expect([404, 405], `${method} ${path}`).toContain(res.status);
    }
    expect(await fingerprint(rt.redis, prefix)).toEqual(before);
    expect(await rt.queues.submit.getJobState('job-1')).toBe('failed');
  });

  it('--dashboard-write allows retry and clean only, and only with credentials', async () => {
    expect((await fetch(`${rw.url}/dashboard/api/queues/submit/obliterate`, { method: 'PUT', headers: { authorization: GOOD } })).status).toBe(403);
    expect((await fetch(`${rw.url}/dashboard/api/queues/submit/retry/failed`, { method: 'PUT' })).status).toBe(401);
    expect((await fetch(`${rw.url}/dashboard/api/queues/submit/retry/failed`, { method: 'PUT', headers: { authorization: GOOD } })).status).toBe(200);
    expect(await rt.queues.submit.getJobState('job-1')).not.toBe('failed');
  });

  it('health and callbacks stay reachable without credentials; the password shows in no log and no answer', async () => {
    expect((await get(ro.url, '/healthz')).status).toBe(200);
    expect((await fetch(`${ro.url}/callbacks/kie/${'a'.repeat(24)}`, { method: 'POST', body: '{}' })).status).toBe(401);
    const answers = await Promise.all(GUARDED.map(async (p) => (await get(ro.url, p, GOOD)).text()));
    const logs = [ro, rw].map((s) => s.proc.stderr() + s.proc.stdout()).join('\n');
    expect(leaks(answers.join('\n') + logs, { password: PASSWORD, authHeader: GOOD.slice(6) })).toEqual([]);
  });
});
