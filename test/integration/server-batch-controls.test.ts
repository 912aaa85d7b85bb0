/** The batches page's pause/resume of one batch (write mode), through the app with `inject()` on real Redis. */
import { afterEach, describe, expect, it } from 'vitest';
import { pauseLane } from '../../src/queue/pause-reason.js';
import { imageId, startBench, type Bench } from './server-fixtures.js';

const USER = 'ops';
const PASSWORD = 'pw-batch-controls';
const AUTH = { authorization: `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}` };
const JSON_BODY = { 'content-type': 'application/json' };

async function seed(b: Bench, batchId: string): Promise<void> {
  await b.rt.store.createRecords(batchId, [{ jobId: imageId(1), input: 'https://img.test/1.png', model: 'topaz/image-upscale', factor: '2' }]);
}

describe('batch pause/resume on the batches page', () => {
  let b: Bench | undefined;
  afterEach(async () => {
    await b?.close();
    b = undefined;
  });

  it('write mode: a button per batch, pause and resume through a JSON POST, shown beside a lane pause', async () => {
    b = await startBench({ DASHBOARD_USER: USER, DASHBOARD_PASSWORD: PASSWORD }, { dashboardWrite: true });
    await seed(b, 'b-one');
    const page = await b.app.inject({ url: '/dashboard/batches', headers: AUTH });
    expect(page.body).toContain('data-act="pause" data-batch="b-one"');

    const paused = await b.app.inject({ method: 'POST', url: '/dashboard/batches/b-one/pause', headers: { ...AUTH, ...JSON_BODY }, payload: '{}' });
    expect(paused.statusCode).toBe(200);
    expect(paused.json()).toMatchObject({ batchId: 'b-one', gate: { state: 'paused', reason: 'paused from the dashboard' } });
    await pauseLane(b.rt.redis, b.rt.store.keys, b.rt.queues.submit, 'submit', { code: '402', message: 'no credits' });
    const after = await b.app.inject({ url: '/dashboard/batches', headers: AUTH });
    expect(after.body).toMatch(/b-one<\/a> <span class="badge paused">paused<\/span><\/h2>/);
    expect(after.body).not.toMatch(/b-one<\/a> <span class="badge running">/);
    // No ETA for a paused batch: the page says why instead.
    expect(after.body).toMatch(/<dt>ETA<\/dt><dd>none: paused: paused from the dashboard<\/dd>/);
    expect(after.body).toContain('paused since');
    expect(after.body).toContain('data-act="resume" data-batch="b-one"');
    expect(after.body).toMatch(/data-lane="submit"[\s\S]*402: no credits/); // the lane pause, separately

    const resumed = await b.app.inject({ method: 'POST', url: '/dashboard/batches/b-one/resume', headers: { ...AUTH, ...JSON_BODY }, payload: '{}' });
    expect(resumed.statusCode).toBe(200);
    expect(resumed.json()).toMatchObject({ batchId: 'b-one', was: { state: 'paused' } });
    expect((await b.rt.store.getSummary('b-one'))!.gate).toBeNull();
  });

  it('refuses without write mode, without auth, a form body, an unknown batch or action', async () => {
    b = await startBench({ DASHBOARD_USER: USER, DASHBOARD_PASSWORD: PASSWORD }, { dashboardWrite: true });
    await seed(b, 'b-two');
    const form = await b.app.inject({ method: 'POST', url: '/dashboard/batches/b-two/pause', headers: { ...AUTH, 'content-type': 'application/x-www-form-urlencoded' }, payload: 'a=1' });
    expect(form.statusCode).toBe(415);
    const text = await b.app.inject({ method: 'POST', url: '/dashboard/batches/b-two/pause', headers: { ...AUTH, 'content-type': 'text/plain' }, payload: '{}' });
    expect(text.statusCode).toBe(415);
    const noAuth = await b.app.inject({ method: 'POST', url: '/dashboard/batches/b-two/pause', headers: JSON_BODY, payload: '{}' });
    expect(noAuth.statusCode).toBe(401);
    const unknown = await b.app.inject({ method: 'POST', url: '/dashboard/batches/nope/pause', headers: { ...AUTH, ...JSON_BODY }, payload: '{}' });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toEqual({ error: 'no batch named nope' });
    const action = await b.app.inject({ method: 'POST', url: '/dashboard/batches/b-two/obliterate', headers: { ...AUTH, ...JSON_BODY }, payload: '{}' });
    expect(action.statusCode).toBe(403) // write mode's allowlist (access.ts) refuses an action it does not name;
    expect((await b.rt.store.getSummary('b-two'))!.gate).toBeNull();
    await b.close();

    b = await startBench({ DASHBOARD_USER: USER, DASHBOARD_PASSWORD: PASSWORD });
    await seed(b, 'b-three');
    const page = await b.app.inject({ url: '/dashboard/batches', headers: AUTH });
    expect(page.body).not.toContain('data-act=');
    const readOnly = await b.app.inject({ method: 'POST', url: '/dashboard/batches/b-three/pause', headers: { ...AUTH, ...JSON_BODY }, payload: '{}' });
    expect(readOnly.statusCode).toBe(405);
    // It says what the flag would allow here (a fresh user's pause was told "to allow retry and clean").
    expect(readOnly.json().error).toBe('the dashboard is read-only (start upscale serve with --dashboard-write to pause or resume one batch)');
    // An unknown batch is not advertised as one the flag would pause (a fresh user's trial).
    const noBatch = await b.app.inject({ method: 'POST', url: '/dashboard/batches/nosuch/pause', headers: { ...AUTH, ...JSON_BODY }, payload: '{}' });
    expect(noBatch.statusCode).toBe(405);
    expect(noBatch.json().error).toBe('the dashboard is read-only, and --dashboard-write would refuse this too: there is no batch named nosuch');
    expect((await b.rt.store.getSummary('b-three'))!.gate).toBeNull();
  });
});
