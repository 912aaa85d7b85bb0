/**
 * The dashboard's write guard judges the route fastify matched, not the URL as typed (issue 10): with
 * `--dashboard-write` and valid credentials, every spelling of pause / empty / obliterate / resume / add / clean of
 * waiting jobs (percent-encoded letters and slashes, double encoding, mixed case, duplicate and trailing slashes,
 * dot segments, `;` matrix parameters) is refused or routes nowhere, and changes nothing in Redis; HEAD and OPTIONS
 * in place of PUT do nothing either. The same spellings of an allowed write (retry of failed jobs) are judged as
 * that route. Requests go over a real socket with the path sent byte for byte (fetch would normalise it).
 */
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queueName } from '../../src/queue/names.js';
import { BOARD_WRITE_RULES, PUBLIC_ROUTES, routesOf } from '../../src/server/access.js';
import { imageId, startBench, submitData, takeJob, type Bench } from '../integration/server-fixtures.js';
import { fingerprint } from './fixtures.js';

const USER = 'ops';
const PASSWORD = 'routing-pass-7';
const AUTH = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;

/** Sends `method path` exactly as written (no normalisation) and resolves the status, headers and body. */
function raw(port: number, method: string, path: string, auth = AUTH, extra: Record<string, string> = {}) {
  return new Promise<{ status: number; body: string; headers: Record<string, unknown> }>((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        headers: { authorization: auth, 'content-type': 'application/json', ...(method === 'GET' || method === 'HEAD' ? {} : { 'content-length': 2 }), ...extra },
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end(method === 'GET' || method === 'HEAD' ? undefined : '{}');
  });
}

/** Every spelling of `/dashboard/api/queues/submit/<action>` the issue lists, and more. */
function spellings(action: string): string[] {
  const a = action;
  const enc = (s: string) => [...s].map((c) => `%${c.charCodeAt(0).toString(16)}`).join('');
  const first = `%${a.charCodeAt(0).toString(16)}${a.slice(1)}`;
  return [
    `/dashboard/api/queues/submit/${a}`,
    `/dashboard/%61pi/queues/submit/${a}`,
    `/dashboard/%41PI/queues/submit/${a}`,
    `/%64ashboard/api/queues/submit/${a}`,
    `/dashboard/api/queues/%73ubmit/${a}`,
    `/dashboard/api/queues/submit/${first}`,
    `/dashboard/api/queues/submit/${enc(a)}`,
    `/dashboard/api/queues/submit/${enc(a).toUpperCase()}`,
    `/dashboard/api/queues/submit/%25${a.charCodeAt(0).toString(16)}${a.slice(1)}`,
    `/dashboard/%2561pi/queues/submit/${a}`,
    `/dashboard%2Fapi%2Fqueues%2Fsubmit%2F${a}`,
    `/dashboard/api%2fqueues/submit/${a}`,
    `/dashboard/api/queues/submit%2F${a}`,
    `/Dashboard/API/Queues/Submit/${a.toUpperCase()}`,
    `/dashboard/api/queues/submit/${a[0]?.toUpperCase()}${a.slice(1)}`,
    `//dashboard/api/queues/submit/${a}`,
    `/dashboard//api/queues/submit/${a}`,
    `/dashboard/api/queues//submit/${a}`,
    `/dashboard/api/queues/submit/${a}/`,
    `/dashboard/api/queues/submit/${a}//`,
    `/dashboard/./api/queues/submit/${a}`,
    `/dashboard/x/../api/queues/submit/${a}`,
    `/dashboard/api/queues/submit/x/../${a}`,
    `/dashboard/api/queues/submit/%2e%2e/submit/${a}`,
    `/dashboard/api/queues/submit/.%2e/submit/${a}`,
    `/dashboard/static/../api/queues/submit/${a}`,
    `/dashboard/api/queues/submit;x=1/${a}`,
    `/dashboard/api/queues/submit/${a};x=1`,
    `/dashboard;x=1/api/queues/submit/${a}`,
    `/dashboard/api;/queues/submit/${a}`,
    `/dashboard/api/queues/submit/${a}?x=1`,
    `/dashboard/api/queues/submit/${a}#frag`,
    `/dashboard/api/queues/submit/${a}%00`,
    `/dashboard/api/queues/submit/${a}%20`,
  ];
}

describe('dashboard write guard on the routed path', () => {
  let b: Bench;
  let port: number;
  const failedJob = 'job-failed-1';

  beforeAll(async () => {
    b = await startBench({ DASHBOARD_USER: USER, DASHBOARD_PASSWORD: PASSWORD }, { dashboardWrite: true });
    await b.app.listen({ port: 0, host: '127.0.0.1' });
    port = (b.app.server.address() as AddressInfo).port;
    await b.rt.queues.submit.add('submit', submitData('f'.repeat(24)), { jobId: failedJob, attempts: 1 });
    const taken = await takeJob(b.rt, 'submit');
    await taken.job.moveToFailed(new Error('seeded failure'), taken.token, false);
    await taken.release();
    for (let i = 0; i < 3; i++) await b.rt.queues.submit.add('submit', submitData(`${i}`.repeat(24)), { jobId: `waiting-${i}` });
    await b.rt.queues.poll.add('poll', { parked: true }, { jobId: 'parked-1', delay: 60_000 });
  }, 60_000);

  afterAll(async () => {
    await b?.close();
  });

  const untouched = async () => {
    expect(await b.rt.queues.submit.isPaused()).toBe(false);
    expect(await b.rt.queues.submit.getJobCounts('waiting', 'failed')).toEqual({ waiting: 3, failed: 1 });
    expect(await b.rt.queues.poll.getJobState('parked-1')).toBe('delayed');
  };

  it.each(['pause', 'empty', 'obliterate', 'resume', 'promote', 'concurrency', 'rate-limit'])(
    'PUT %s: refused under every spelling, nothing changes',
    async (action) => {
      await untouched();
      const before = await fingerprint(b.rt.redis, b.prefix, (k) => k.endsWith(':counters') || k.endsWith(':stalled-check'));
      for (const path of spellings(action)) {
        for (const method of ['PUT', 'put', 'Put', 'POST', 'PATCH', 'DELETE']) {
          const res = await raw(port, method, path);
          expect([400, 403, 404, 405], `${method} ${path} answered ${res.status} ${res.body}`).toContain(res.status);
        }
      }
      expect(await fingerprint(b.rt.redis, b.prefix, (k) => k.endsWith(':counters') || k.endsWith(':stalled-check'))).toEqual(before);
      await untouched();
    },
    60_000,
  );

  it('the issue sample: PUT /dashboard/%61pi/queues/submit/pause is 403 and the lane stays running', async () => {
    const res = await raw(port, 'PUT', '/dashboard/%61pi/queues/submit/pause');
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body).error).toMatch(/not allowed.*retry failed jobs/);
    expect(await b.rt.queues.submit.isPaused()).toBe(false);
  });

  it('clean of waiting or delayed jobs is refused however the status is spelled; one waiting job cannot be removed', async () => {
    for (const path of [
      '/dashboard/api/queues/submit/clean/wait',
      '/dashboard/api/queues/submit/clean/waiting',
      '/dashboard/api/queues/submit/clean/%77ait',
      '/dashboard/api/queues/poll/clean/delayed',
      '/dashboard/api/queues/poll/clean/%64elayed',
      '/dashboard/api/queues/poll/clean/active',
      '/dashboard/api/queues/poll/parked-1/clean',
      '/dashboard/api/queues/p%6fll/parked-%31/clean',
      '/dashboard/api/queues/submit/waiting-0/clean',
      '/dashboard/api/queues/submit/waiting-0/retry',
      '/dashboard/api/queues/other/clean/failed',
      '/dashboard/api/queues/submit/retry/completed',
    ]) {
      const res = await raw(port, 'PUT', path);
      expect(res.status, `${path}: ${res.body}`).toBe(403);
    }
    await untouched();
  });

  it('HEAD and GET of a write route do not run it; OPTIONS finds no route', async () => {
    for (const method of ['HEAD', 'GET', 'OPTIONS']) {
      for (const action of ['pause', 'empty', 'obliterate']) {
        for (const path of spellings(action)) {
          const res = await raw(port, method, path);
          // 403: @fastify/static refuses a dot segment under /dashboard/static/.
          expect([400, 403, 404], `${method} ${path}: ${res.status}`).toContain(res.status);
        }
      }
    }
    // A GET of .../pause routes to the read-only job route (job "pause" of queue "submit"): a 404 for the job.
    expect((await raw(port, 'GET', '/dashboard/api/queues/submit/pause')).status).toBe(404);
    expect((await raw(port, 'HEAD', '/dashboard/api/queues/submit/obliterate')).status).toBe(404);
    expect((await raw(port, 'OPTIONS', '/dashboard/api/queues/submit/pause')).status).toBe(404);
    await untouched();
  });

  it('an allowed write is judged as its route whatever the spelling: retry of failed jobs runs', async () => {
    const res = await raw(port, 'PUT', '/dashboard/%61pi/queues/%73ubmit/retry/%66ailed');
    expect(res.status, res.body).toBe(200);
    expect(await b.rt.queues.submit.getJobState(failedJob)).toBe('waiting');
  });

  it('without credentials every spelling is 401', async () => {
    for (const path of spellings('retry/failed')) {
      const res = await raw(port, 'PUT', path, 'Basic bm9wZTpub3Bl');
      expect([401, 404], `${path}: ${res.status}`).toContain(res.status);
    }
  });

  it('every write rule names a route the app really has (a renamed Bull Board route fails here, not silently)', () => {
    for (const rule of BOARD_WRITE_RULES) {
      expect(b.app.hasRoute({ method: rule.method, url: rule.route }), rule.route).toBe(true);
    }
  });
});

describe('read-only dashboard: every write is 405 on the routed path', () => {
  let b: Bench;
  let port: number;

  beforeAll(async () => {
    b = await startBench({ DASHBOARD_USER: USER, DASHBOARD_PASSWORD: PASSWORD });
    await b.app.listen({ port: 0, host: '127.0.0.1' });
    port = (b.app.server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await b?.close();
  });

  it('retry and clean, under any spelling, are 405 with an Allow that names reads only (none where the route has no GET)', async () => {
    for (const action of ['retry/failed', 'clean/failed', 'pause']) {
      for (const path of spellings(action)) {
        const res = await raw(port, 'PUT', path);
        expect([404, 405], `${path}: ${res.status}`).toContain(res.status);
        if (res.status === 405) expect(['', 'GET, HEAD'], `${path}: Allow ${String(res.headers.allow)}`).toContain(res.headers.allow);
      }
    }
    expect(await b.rt.queues.submit.isPaused()).toBe(false);
  });
});

describe('every route of the app, reviewed', () => {
  let b: Bench;
  let port: number;

  beforeAll(async () => {
    b = await startBench({ DASHBOARD_USER: USER, DASHBOARD_PASSWORD: PASSWORD }, { dashboardWrite: true });
    await b.app.listen({ port: 0, host: '127.0.0.1' });
    port = (b.app.server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await b?.close();
  });

  it('only the listed public routes answer without credentials; every other registered route is 401', async () => {
    const routes = routesOf(b.app);
    expect(routes.length).toBeGreaterThan(40);
    const publicSeen: string[] = [];
    for (const { method, url } of routes) {
      const path = url.replace(/:[A-Za-z]+/g, 'x1').replace(/\*$/, 'x.js');
      const key = `${method} ${url}`;
      const res = await raw(port, method, path, 'Basic bm9wZTpub3Bl');
      if (PUBLIC_ROUTES.includes(key) || (method === 'HEAD' && PUBLIC_ROUTES.includes(`GET ${url}`))) {
        publicSeen.push(key);
        expect(res.headers['www-authenticate'], key).toBeUndefined();
      } else {
        expect(res.status, `${key} without credentials: ${res.status} ${res.body.slice(0, 80)}`).toBe(401);
      }
    }
    expect(new Set(publicSeen.filter((k) => !k.startsWith('HEAD ')))).toEqual(new Set(PUBLIC_ROUTES));
  });

  it('the callback receiver stays outside basic auth: a bad token is its own 401, without a Basic challenge', async () => {
    const res = await raw(port, 'POST', `/callbacks/kie/${'a'.repeat(24)}?t=x`, 'Basic bm9wZTpub3Bl');
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBeUndefined();
    expect(JSON.parse(res.body)).toEqual({ code: 401, msg: 'invalid callback token' });
  });
});

/**
 * One cross-site check for every state-changing route (trial of issues 10/14, item B): `POST
 * /dashboard/batches/:id/pause` with `Origin: http://evil.example` paused the batch while `/api/batches/:id/retry`
 * refused the same Origin. Every non-GET route the app registers behind the dashboard is sent the foreign Origin
 * (and the other browser signals of a foreign page) and must refuse it without writing anything.
 */
describe('cross-site writes are refused on every dashboard route', () => {
  let b: Bench;
  let port: number;
  const BATCH = 'xsite-batch';
  const failedJob = 'xsite-failed-1';

  beforeAll(async () => {
    b = await startBench({ DASHBOARD_USER: USER, DASHBOARD_PASSWORD: PASSWORD }, { dashboardWrite: true });
    await b.app.listen({ port: 0, host: '127.0.0.1' });
    port = (b.app.server.address() as AddressInfo).port;
    const images = Array.from({ length: 3 }, (_, i) => ({ jobId: imageId(9100 + i), input: `https://img.test/x/${i}.png`, model: 'topaz/image-upscale' as const, factor: '2' as const }));
    await b.rt.store.createRecords(BATCH, images);
    await b.rt.store.transition(BATCH, imageId(9100), { state: 'failed', failCode: '500', failMsg: 'seeded', completedAt: Date.now() });
    await b.rt.queues.submit.add('submit', submitData('e'.repeat(24)), { jobId: failedJob, attempts: 1 });
    const taken = await takeJob(b.rt, 'submit');
    await taken.job.moveToFailed(new Error('seeded failure'), taken.token, false);
    await taken.release();
  }, 60_000);

  afterAll(async () => {
    await b?.close();
  });

  /** The route's pattern with real values: this batch, the submit lane, its failed job, pause. */
  const pathOf = (url: string) =>
    url
      .replace(':queueName', queueName('submit'))
      .replace(':queueStatus', 'failed')
      .replace(':jobId', failedJob)
      .replace(':id', BATCH)
      .replace(':action', 'pause')
      .replace(/:[A-Za-z]+/g, 'x1');
  const writeRoutes = () => routesOf(b.app).filter((r) => r.method !== 'GET' && r.method !== 'HEAD' && !PUBLIC_ROUTES.includes(`${r.method} ${r.url}`));
  const skipCounters = (k: string) => k.endsWith(':counters') || k.endsWith(':stalled-check');

  it('the trial sample: POST /dashboard/batches/:id/pause with Origin: http://evil.example is 403 and the batch runs on', async () => {
    const res = await raw(port, 'POST', `/dashboard/batches/${BATCH}/pause`, AUTH, { origin: 'http://evil.example' });
    expect(res.status, res.body).toBe(403);
    expect(JSON.parse(res.body).error).toMatch(/^cross-site request refused/);
    expect((await b.rt.store.getSummary(BATCH))?.gate).toBeNull();
  });

  it('every write route refuses a foreign Origin, Origin: null and Sec-Fetch-Site cross-site/same-site; nothing changes', async () => {
    const routes = writeRoutes();
    // Bull Board's PUT routes and the pipeline's own POST routes.
    expect(routes.length).toBeGreaterThan(10);
    expect(routes.map((r) => `${r.method} ${r.url}`)).toEqual(expect.arrayContaining(['POST /dashboard/batches/:id/:action', 'POST /api/batches/:id/retry']));
    const before = await fingerprint(b.rt.redis, b.prefix, skipCounters);
    const foreign: Record<string, string>[] = [
      { origin: 'http://evil.example' },
      { origin: 'https://evil.example' },
      { origin: `http://127.0.0.1:${port}.evil.example` },
      { origin: `http://127.0.0.1:${port + 1}` },
      { origin: 'null' },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
      { 'sec-fetch-site': 'cross-site', origin: `http://127.0.0.1:${port}` },
    ];
    for (const { method, url } of routes) {
      for (const headers of foreign) {
        const res = await raw(port, method, pathOf(url), AUTH, headers);
        expect(res.status, `${method} ${url} with ${JSON.stringify(headers)}: ${res.body.slice(0, 120)}`).toBe(403);
        expect(JSON.parse(res.body).error, `${method} ${url}`).toMatch(/^cross-site request refused/);
      }
    }
    expect(await fingerprint(b.rt.redis, b.prefix, skipCounters)).toEqual(before);
    expect(await b.rt.queues.submit.getJobState(failedJob)).toBe('failed');
  });

  it('the same routes with this dashboard\'s own Origin (or a browser saying same-origin behind a proxy) pass the check', async () => {
    for (const { method, url } of writeRoutes()) {
      for (const headers of [{ origin: `http://127.0.0.1:${port}` }, { origin: 'https://ops.example.com', 'sec-fetch-site': 'same-origin' }, {}]) {
        const res = await raw(port, method, pathOf(url), AUTH, headers);
        expect(res.body, `${method} ${url} with ${JSON.stringify(headers)}`).not.toMatch(/cross-site/);
      }
    }
  });

  it('with a matching Origin, pause and resume of the batch and retry of its failed images run', async () => {
    const own = { origin: `http://127.0.0.1:${port}` };
    const paused = await raw(port, 'POST', `/dashboard/batches/${BATCH}/pause`, AUTH, own);
    expect(paused.status, paused.body).toBe(200);
    expect((await b.rt.store.getSummary(BATCH))?.gate?.state).toBe('paused');
    const resumed = await raw(port, 'POST', `/dashboard/batches/${BATCH}/resume`, AUTH, { ...own, 'sec-fetch-site': 'same-origin' });
    expect(resumed.status, resumed.body).toBe(200);
    expect((await b.rt.store.getSummary(BATCH))?.gate).toBeNull();
    // (the test before retried the first failed image already)
    await b.rt.store.transition(BATCH, imageId(9101), { state: 'failed', failCode: '500', failMsg: 'seeded', completedAt: Date.now() });
    const retried = await raw(port, 'POST', `/api/batches/${BATCH}/retry?state=failed`, AUTH, own);
    expect(retried.status, retried.body).toBe(200);
    expect(JSON.parse(retried.body)).toMatchObject({ retried: 1 });
  });
});
