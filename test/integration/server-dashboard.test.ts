import { afterEach, describe, expect, it } from 'vitest';
import { pauseLane } from '../../src/queue/pause-reason.js';
import { imageId, startBench, submitData, takeJob, type Bench } from './server-fixtures.js';

const USER = 'ops';
const PASSWORD = 'correct horse battery staple';
const basic = (user: string, password: string) => ({
  authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
});
const AUTH = basic(USER, PASSWORD);

/** A batch with records in several states. */
async function seedBatch(b: Bench, batchId = 'b-mixed'): Promise<void> {
  const images = Array.from({ length: 6 }, (_, i) => ({
    jobId: imageId(100 + i),
    input: `https://img.test/${i}.png`,
    model: 'topaz/image-upscale' as const,
    factor: '2' as const,
  }));
  await b.rt.store.createRecords(batchId, images);
  const now = Date.now();
  await b.rt.store.transition(batchId, imageId(100), {
    state: 'succeeded',
    taskId: 't0',
    resultUrls: ['https://r.test/0.png'],
    creditsConsumed: 20,
    submittedAt: now - 9000,
    completedAt: now - 1000,
  });
  await b.rt.store.transition(batchId, imageId(101), {
    state: 'failed',
    failCode: '422',
    failMsg: 'bad, "image"\nreally',
    completedAt: now,
  });
  await b.rt.store.transition(batchId, imageId(102), {
    state: 'polling',
    taskId: 't2',
    submittedAt: now - 2000,
  });
  await b.rt.store.transition(batchId, imageId(103), { state: 'submitting' });
}

describe('dashboard', () => {
  let b: Bench | undefined;
  afterEach(async () => {
    await b?.close();
    b = undefined;
  });

  it.each([
    '/dashboard',
    '/dashboard/batches',
    '/api/batches',
    '/dashboard/api/queues',
    '/api/batches/b-mixed/export',
  ])('basic auth guards %s: none → 401, wrong → 401, right → 200', async (url) => {
    b = await startBench({ DASHBOARD_USER: USER, DASHBOARD_PASSWORD: PASSWORD });
    await seedBatch(b);
    const none = await b.app.inject({ method: 'GET', url });
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toMatch(/^Basic realm="/);
    expect((await b.app.inject({ method: 'GET', url, headers: basic(USER, 'wrong') })).statusCode).toBe(401);
    expect((await b.app.inject({ method: 'GET', url, headers: basic('admin', PASSWORD) })).statusCode).toBe(
      401,
    );
    expect(
      (await b.app.inject({ method: 'GET', url, headers: { authorization: 'Bearer x' } })).statusCode,
    ).toBe(401);
    expect((await b.app.inject({ method: 'GET', url, headers: AUTH })).statusCode).toBe(200);
  });

  it('health, metrics and callbacks stay outside the dashboard auth', async () => {
    b = await startBench({ DASHBOARD_USER: USER, DASHBOARD_PASSWORD: PASSWORD });
    expect((await b.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    expect((await b.app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(200);
    expect(
      (await b.app.inject({ method: 'POST', url: `/callbacks/kie/${imageId(1)}`, payload: '{}' })).statusCode,
    ).toBe(401);
  });

  it('is read-only by default: Bull Board refuses retry and clean, and the failed job stays failed', async () => {
    b = await startBench();
    await b.rt.queues.submit.add('submit', submitData(imageId(2)), { jobId: imageId(2), attempts: 1 });
    const taken = await takeJob(b.rt, 'submit');
    await taken.job.moveToFailed(new Error('boom'), taken.token, false);
    await taken.release();
    expect(await b.rt.queues.submit.getJobState(imageId(2))).toBe('failed');
    const errors: Record<string, string> = {};
    for (const url of [
      '/dashboard/api/queues/submit/retry/failed',
      `/dashboard/api/queues/submit/${imageId(2)}/retry`,
      '/dashboard/api/queues/submit/clean/failed',
      '/dashboard/api/queues/submit/obliterate',
      '/dashboard/api/queues/submit/retry/completed',
      '/dashboard/api/queues/bogus/retry/failed',
    ]) {
      const res = await b.app.inject({ method: 'PUT', url });
      expect(res.statusCode, url).toBe(405);
      // No GET at these routes: nothing is allowed here now (an empty Allow, not "GET, HEAD" that would 404).
      expect(res.headers.allow, url).toBe('');
      errors[url] = res.json<{ error: string }>().error;
    }
    // What write mode would refuse as well is not advertised as allowed by it (a fresh user's trial).
    expect(errors['/dashboard/api/queues/submit/retry/completed']).toBe('the dashboard is read-only, and --dashboard-write would refuse this too: only failed jobs, not "completed"');
    expect(errors['/dashboard/api/queues/bogus/retry/failed']).toBe('the dashboard is read-only, and --dashboard-write would refuse this too: unknown queue "bogus"');
    // Each refusal says what --dashboard-write would allow there, or that it allows nothing of the kind.
    expect(errors['/dashboard/api/queues/submit/retry/failed']).toBe('the dashboard is read-only (start upscale serve with --dashboard-write to retry every failed job of a lane)');
    expect(errors['/dashboard/api/queues/submit/obliterate']).toMatch(/^the dashboard is read-only, and --dashboard-write does not allow this either \(it allows: retry every failed job of a lane; .*pause or resume one batch; .*\)$/);
    expect(await b.rt.queues.submit.getJobState(imageId(2))).toBe('failed');
    const queues = await b.app.inject({ method: 'GET', url: '/dashboard/api/queues' });
    expect(queues.statusCode).toBe(200);
    expect(queues.json()).toMatchObject({
      queues: expect.arrayContaining([expect.objectContaining({ name: 'submit', readOnlyMode: true })]),
    });
  });

  it('with dashboardWrite, retry and clean are allowed and everything else is refused', async () => {
    b = await startBench({}, { dashboardWrite: true });
    await b.rt.queues.submit.add('submit', submitData(imageId(3)), { jobId: imageId(3) });
    expect(
      (await b.app.inject({ method: 'PUT', url: '/dashboard/api/queues/submit/clean/completed' })).statusCode,
    ).toBe(200);
    expect(
      (await b.app.inject({ method: 'PUT', url: '/dashboard/api/queues/submit/retry/failed' })).statusCode,
    ).toBe(200);
    for (const [method, url] of [
      ['PUT', '/dashboard/api/queues/submit/obliterate'],
      ['PUT', '/dashboard/api/queues/submit/empty'],
      ['PUT', '/dashboard/api/queues/submit/pause'],
      ['PUT', '/dashboard/api/queues/pause'],
      ['POST', '/dashboard/api/queues/submit/add'],
      ['PATCH', `/dashboard/api/queues/submit/${imageId(3)}/update-data`],
    ] as const) {
      const res = await b.app.inject({ method, url, payload: {} });
      expect(res.statusCode, url).toBe(403);
    }
    expect(await b.rt.queues.submit.getJob(imageId(3))).toBeDefined();
    expect(await b.rt.queues.submit.isPaused()).toBe(false);
  });

  it('shows job data in Bull Board without callback tokens or secrets', async () => {
    b = await startBench({ KIE_API_KEY: 'sk-live-should-never-show' });
    const data = {
      ...submitData(imageId(4)),
      note: 'https://x.test/callbacks/kie/abc?t=SECRETTOKEN123',
      token: 'abc',
    };
    await b.rt.queues.submit.add('submit', data, { jobId: imageId(4) });
    const res = await b.app.inject({ method: 'GET', url: `/dashboard/api/queues/submit/${imageId(4)}` });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain(imageId(4));
    expect(res.body).not.toContain('SECRETTOKEN123');
    expect(res.body).not.toContain('sk-live-should-never-show');
    expect(res.json()).toMatchObject({ job: { data: { token: '[redacted]', jobId: imageId(4) } } });
  });

  it('the batches page shows progress, counts, credits, lanes with escaped pause reasons, and links', async () => {
    b = await startBench();
    await seedBatch(b);
    await pauseLane(b.rt.redis, b.rt.store.keys, b.rt.queues.submit, 'submit', {
      code: '402',
      message: 'credits <script>alert(1)</script>',
    });
    const res = await b.app.inject({ method: 'GET', url: '/dashboard/batches' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/html');
    const html = res.body;
    expect(html).toContain('data-batch-id="b-mixed"');
    expect(html).toContain('<b>2</b> of <b>6</b> done (33.3%)');
    expect(html).toContain('aria-valuenow="2"');
    expect(html).toMatch(/succeeded <b class="count-succeeded">1<\/b>/);
    expect(html).toMatch(/polling <b class="count-polling">1<\/b>/);
    expect(html).toContain('<dd>20</dd>');
    expect(html).toContain('href="/api/batches/b-mixed/export?format=csv"');
    expect(html).toContain('href="/api/batches/b-mixed/export?format=csv&amp;bom=1"'); // the "Excel" link
    expect(html).toContain('href="/dashboard"');
    expect(html).toContain('credits &lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).not.toContain('<script>');
    expect(html).toContain('<meta http-equiv="refresh" content="5">');
    expect((await b.app.inject({ method: 'GET', url: '/dashboard/batches?refresh=0' })).body).not.toContain(
      'http-equiv="refresh"',
    );
  });

  it('the batch API lists, describes and exports (JSONL and CSV) and answers 404/400 for bad ids', async () => {
    b = await startBench();
    await seedBatch(b);
    const list = (await b.app.inject({ method: 'GET', url: '/api/batches' })).json();
    expect(list.batches).toHaveLength(1);
    expect(list.batches[0]).toMatchObject({
      batchId: 'b-mixed',
      total: 6,
      counts: { succeeded: 1, failed: 1, polling: 1, submitting: 1, waiting: 2 },
    });
    expect(list.lanes.submit).toMatchObject({ paused: false });
    expect((await b.app.inject({ method: 'GET', url: '/api/batches/b-mixed' })).json()).toMatchObject({
      batchId: 'b-mixed',
      creditsConsumed: 20,
    });
    expect((await b.app.inject({ method: 'GET', url: '/api/batches/nope' })).statusCode).toBe(404);
    expect((await b.app.inject({ method: 'GET', url: '/api/batches/nope/export' })).statusCode).toBe(404);
    expect(
      (await b.app.inject({ method: 'GET', url: '/api/batches/b-mixed/export?format=xml' })).statusCode,
    ).toBe(400);
    expect(
      (await b.app.inject({ method: 'GET', url: `/api/batches/${encodeURIComponent('"x')}` })).statusCode,
    ).toBe(400);

    const jsonl = await b.app.inject({ method: 'GET', url: '/api/batches/b-mixed/export?format=jsonl' });
    expect(jsonl.statusCode).toBe(200);
    expect(jsonl.headers['content-type']).toBe('application/x-ndjson; charset=utf-8');
    expect(jsonl.headers['content-disposition']).toBe('attachment; filename="b-mixed.jsonl"');
    const lines = jsonl.body
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { jobId: string; state: string; failMsg: string | null });
    expect(lines).toHaveLength(6);
    expect(lines.find((l) => l.jobId === imageId(101))).toMatchObject({
      state: 'failed',
      failMsg: 'bad, "image"\nreally',
    });

    const csv = await b.app.inject({ method: 'GET', url: '/api/batches/b-mixed/export?format=csv' });
    expect(csv.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(csv.body.startsWith('jobId,batchId,input,')).toBe(true);
    expect(csv.body).toContain('"bad, ""image""\nreally"');
    expect(csv.body.split('\r\n').filter(Boolean)).toHaveLength(7); // header + 6 records (a quoted LF is not a record end)

    // bom=1: the same CSV after a UTF-8 byte order mark (for Excel); bom with JSONL or another value is refused.
    const excel = await b.app.inject({ method: 'GET', url: '/api/batches/b-mixed/export?format=csv&bom=1' });
    expect([...excel.rawPayload.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    expect(excel.rawPayload.subarray(3).toString('utf8')).toBe(csv.body);
    expect((await b.app.inject({ method: 'GET', url: '/api/batches/b-mixed/export?format=jsonl&bom=1' })).json()).toEqual({ error: 'bom=1 is for format=csv (JSON Lines has no byte order mark)' });
    const yes = await b.app.inject({ method: 'GET', url: '/api/batches/b-mixed/export?format=csv&bom=yes' });
    expect(yes.statusCode).toBe(400);
    expect(yes.json()).toEqual({ error: 'bom must be 1 (a UTF-8 byte order mark, for Excel) or 0 (got "yes")' });
  });

  it('/ redirects to the batches page', async () => {
    b = await startBench();
    const res = await b.app.inject({ method: 'GET', url: '/' });
    expect(res.statusCode).toBe(302);
    expect(res.headers.location).toBe('/dashboard/batches');
  });
});
