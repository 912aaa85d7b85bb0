/**
 * Injected faults, set in code or at run time through `POST /sim/control` (as a test in another process
 * would): maintenance (455), server errors (500), generation errors (501), malformed answers (after the call
 * was processed), Cloudflare-like HTML pages, and slow answers.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startSimulator, type SimOptions, type Simulator } from '../../src/sim/index.js';
import { sampleImageUrl, simCall, topazBody } from '../helpers/images.js';
import { waitFor } from '../helpers/redis.js';

const CREATE = '/api/v1/jobs/createTask';

let sim: Simulator | undefined;
afterEach(async () => {
  await sim?.stop();
  sim = undefined;
});

async function start(o: Partial<SimOptions> = {}): Promise<Simulator> {
  sim = await startSimulator({ apiKeys: ['k'], timeScale: 100, dialect: 'docs', ...o });
  return sim;
}

describe('faults', () => {
  it('maintenance: every API call answers 455 (uploads too) while it is on, nothing is created', async () => {
    const s = await start();
    const body = topazBody(sampleImageUrl(s.url, 'm'));
    s.setFaults({ maintenance: true });
    for (const [path, b] of [
      [CREATE, body],
      ['/api/v1/jobs/recordInfo?taskId=x', undefined],
      ['/api/v1/chat/credit', undefined],
    ] as const) {
      const a = await simCall(s.url, path, { body: b });
      expect(a.status).toBe(200);
      expect(a.json).toMatchObject({ code: 455, data: null });
    }
    const upload = await simCall(s.url, '/api/file-base64-upload', { body: { base64Data: 'aGk=' } });
    expect(upload.json).toMatchObject({ success: false, code: 455 });
    expect(s.stats()).toMatchObject({ rejected455: 4, createAccepted: 0 });
    s.setFaults({ maintenance: false });
    expect((await simCall(s.url, CREATE, { body })).json.code).toBe(200);
  });

  it('maintenanceWindow: 455 for the (scaled) duration, then service again', async () => {
    const s = await start();
    s.maintenanceWindow(30_000); // 300 ms at ×100
    expect((await simCall(s.url, '/api/v1/chat/credit')).json.code).toBe(455);
    await waitFor(async () => (await simCall(s.url, '/api/v1/chat/credit')).json.code === 200, {
      what: 'end of maintenance',
    });
  });

  it('POST /sim/control sets faults, credits and a maintenance window at run time, and names a bad field', async () => {
    const s = await start();
    const on = await simCall(s.url, '/sim/control', { body: { faults: { maintenance: true }, credits: 7 } });
    expect(on.json).toMatchObject({ ok: true, credits: 7, maintenance: true });
    expect((await simCall(s.url, '/api/v1/chat/credit')).json.code).toBe(455);
    await simCall(s.url, '/sim/control', { body: { faults: { maintenance: false } } });
    expect((await simCall(s.url, '/api/v1/chat/credit')).json).toMatchObject({ code: 200, data: 7 });
    await simCall(s.url, '/sim/control', { body: { maintenanceMs: 20_000 } });
    expect((await simCall(s.url, '/api/v1/chat/credit')).json.code).toBe(455);

    const bad = await simCall(s.url, '/sim/control', { body: { faults: { serverErrorRate: 2 } } });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatch(/serverErrorRate must be a share from 0 to 1/);
    const unknown = await simCall(s.url, '/sim/control', { body: { faults: { meteorStrike: true } } });
    expect(unknown.json.error).toMatch(/unknown fault "meteorStrike"/);
    // A fault sent at the top level (the exact body) is refused with the body to send instead; nothing changes.
    const topLevel = await simCall(s.url, '/sim/control', { body: { truncatedResultRate: 1 } });
    expect(topLevel.status).toBe(400);
    expect(topLevel.json.error).toBe('truncatedResultRate is a fault: send {"faults":{"truncatedResultRate":1}}');
    expect((await simCall(s.url, '/sim/control', { body: {} })).json).toMatchObject({ ok: true, faults: { truncatedResultRate: 0 } });
    const other = await simCall(s.url, '/sim/control', { body: { creditz: 5 } });
    expect(other.json.error).toMatch(/^unknown field "creditz": the body takes faults, credits, creditDrain, maintenanceMs, dailyLimit; faults go inside "faults" \(maintenance, serverErrorRate, .*gzipResultRate\)$/);
    const fixed = await simCall(s.url, '/sim/control', { body: { faults: { truncatedResultRate: 1 } } });
    expect(fixed.json).toMatchObject({ ok: true, faults: { truncatedResultRate: 1 } });
    expect(() => s.setFaults({ slowRate: -1 })).toThrow(/slowRate/);
  });

  it('serverErrorRate 1: createTask and recordInfo answer 500 and nothing is created or counted', async () => {
    const s = await start({ faults: { serverErrorRate: 1 } });
    const create = await simCall(s.url, CREATE, { body: topazBody(sampleImageUrl(s.url, 'e')) });
    expect(create.json).toMatchObject({ code: 500, data: null });
    expect((await simCall(s.url, '/api/v1/jobs/recordInfo?taskId=x')).json.code).toBe(500);
    expect(s.stats()).toMatchObject({ errors500: 2, createAccepted: 0, queries: 0, peakCreateInWindow: 0 });
    expect(s.tasks()).toEqual([]);
  });

  it('generationErrorRate 1: createTask answers 501, nothing is created', async () => {
    const s = await start({ faults: { generationErrorRate: 1 } });
    expect((await simCall(s.url, CREATE, { body: topazBody(sampleImageUrl(s.url, 'g')) })).json.code).toBe(
      501,
    );
    expect(s.stats()).toMatchObject({ errors501: 1, createAccepted: 0 });
  });

  it('malformedRate 1: the body is cut, yet the call was processed (the task exists: an ambiguous submit)', async () => {
    const s = await start({ faults: { malformedRate: 1 } });
    const a = await simCall(s.url, CREATE, { body: topazBody(sampleImageUrl(s.url, 'cut')) });
    expect(a.status).toBe(200);
    expect(a.headers.get('content-type')).toMatch(/^application\/json/);
    expect(a.json).toBeUndefined();
    expect(a.text.startsWith('{"code":200')).toBe(true);
    expect(s.tasks()).toHaveLength(1);
    expect(s.stats()).toMatchObject({ malformed: 1, createAccepted: 1 });
  });

  it('htmlErrorRate 1: a Cloudflare-like HTML 502 page, nothing processed', async () => {
    const s = await start({ faults: { htmlErrorRate: 1 } });
    const a = await simCall(s.url, CREATE, { body: topazBody(sampleImageUrl(s.url, 'html')) });
    expect(a.status).toBe(502);
    expect(a.headers.get('content-type')).toMatch(/^text\/html/);
    expect(a.text).toMatch(/Bad gateway/);
    expect(s.stats()).toMatchObject({ htmlErrors: 1, createAccepted: 0 });
  });

  it('slowRate 1: answers come after slowMs (scaled)', async () => {
    const s = await start({ faults: { slowRate: 1, slowMs: 30_000 } }); // 300 ms at ×100
    const t0 = Date.now();
    expect((await simCall(s.url, '/api/v1/chat/credit')).json.code).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(s.stats().slowed).toBe(1);
  });

  it('stop() ends promptly with tasks, callbacks and a slow answer still pending', async () => {
    const s = await start({ timeScale: 1, faults: { slowRate: 1, slowMs: 60_000 } });
    const pending = simCall(s.url, '/api/v1/chat/credit').catch((e: unknown) => e);
    await waitFor(() => s.stats().slowed === 1, { what: 'slow call under way' });
    const t0 = Date.now();
    await s.stop();
    expect(Date.now() - t0).toBeLessThan(2000);
    await pending;
  });
});
