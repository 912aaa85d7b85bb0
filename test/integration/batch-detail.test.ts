/**
 * The batch page's routes through `inject`: bad parameters answered 400 naming the parameter, unknown batches 404,
 * the read-only dashboard refusing "retry these", the JSON records API, thumbnails only from their own folder, and
 * a filtered export with exactly the filtered set.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'csv-parse/sync';
import { submitJobId } from '../../src/queue/identity.js';
import { imageId, startBench, type Bench } from './server-fixtures.js';

let b: Bench | undefined;
afterEach(async () => {
  await b?.close();
  b = undefined;
});

const BATCH = 'detail';

async function seed(bench: Bench): Promise<void> {
  const images = Array.from({ length: 30 }, (_, i) => ({
    jobId: imageId(i + 1),
    input: `https://img.test/p/${i}.jpg`,
    model: 'topaz/image-upscale' as const,
    factor: '2' as const,
    line: i + 2,
    meta: { sku: `S-${100 + i}` },
  }));
  await bench.rt.store.createRecords(BATCH, images);
  for (const [i, img] of images.entries()) {
    if (i % 3 === 0) await bench.rt.store.transition(BATCH, img.jobId, { state: 'failed', failCode: '422', failMsg: 'bad image', completedAt: 1000 + i });
    else if (i % 3 === 1) await bench.rt.store.transition(BATCH, img.jobId, { state: 'succeeded', completedAt: 1000 + i, creditsConsumed: 10 });
  }
}

describe('batch page routes', () => {
  it('answers bad parameters with 400 naming the parameter, and unknown batches with 404', async () => {
    b = await startBench();
    await seed(b);
    const get = (url: string) => b!.app.inject({ method: 'GET', url });
    let res = await get(`/api/batches/${BATCH}/records?state=done`);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ error: 'state: "done" must be one of waiting, held, submitting, polling, succeeded, failed, timed_out, cancelled, expired' });
    res = await get(`/api/batches/${BATCH}/records?size=5000`);
    expect(res.json()).toEqual({ error: 'size: "5000" must be a whole number from 10 to 500' });
    res = await get(`/api/batches/${BATCH}/records?sort=finished&state=waiting`);
    expect(res.json().error).toBe('sort "finished" lists finished images only; "waiting" images have no finish time');
    res = await get(`/dashboard/batches/${BATCH}?group=../../x`);
    expect(res.statusCode).toBe(400);
    expect(res.body).toContain('group: &quot;../../x&quot; is not a failure group id');
    res = await get('/dashboard/batches/nope');
    expect(res.statusCode).toBe(404);
    expect((await get('/api/batches/nope/records')).statusCode).toBe(404);
    expect((await get(`/api/batches/${BATCH}/export?format=csv&order=sideways`)).json()).toEqual({ error: 'order: "sideways" must be asc or desc' });
  });

  it('returns pages of records as JSON, searchable by meta', async () => {
    b = await startBench();
    await seed(b);
    const res = await b.app.inject({ method: 'GET', url: `/api/batches/${BATCH}/records?q=s-11&size=10` });
    expect(res.statusCode).toBe(200);
    const body = res.json<{ total: number; records: { meta: { sku: string } }[] }>();
    expect(body.total).toBe(10);
    expect(body.records.map((r) => r.meta.sku)).toEqual(Array.from({ length: 10 }, (_, k) => `S-${110 + k}`));
    // The question: "what happened to SKU 12345?"
    await b.rt.store.createRecords(BATCH, [{ jobId: imageId(999), input: 'https://img.test/p/x.jpg', model: 'topaz/image-upscale', factor: '2', line: 40, meta: { sku: '12345' } }]);
    const sku = (await b.app.inject({ method: 'GET', url: `/dashboard/batches/${BATCH}?q=12345` })).body;
    expect(sku).toContain('<span class="range">1–1 of 1</span>');
    expect(sku).toContain('<span class="chip">sku: 12345</span>');
  });

  it('answers a page past the end (page=999) with the last page, the same on the HTML page and in the JSON API', async () => {
    b = await startBench();
    await seed(b);
    const json = await b.app.inject({ method: 'GET', url: `/api/batches/${BATCH}/records?page=999&size=10` });
    const body = json.json<{ total: number; offset: number; page: number; pageSize: number; pages: number; records: { line: number }[] }>();
    expect(body).toMatchObject({ total: 30, offset: 20, page: 3, pageSize: 10, pages: 3 });
    expect(body.records.map((r) => r.line)).toEqual(Array.from({ length: 10 }, (_, k) => 22 + k));
    const html = (await b.app.inject({ method: 'GET', url: `/dashboard/batches/${BATCH}?page=999&size=10` })).body;
    expect(html).toContain('<span class="range">21–30 of 30</span> · page 3 of 3');
    const empty = (await b.app.inject({ method: 'GET', url: `/api/batches/${BATCH}/records?page=999&q=nothing-matches` })).json();
    expect(empty).toMatchObject({ total: 0, offset: 0, page: 1, pages: 1, records: [] });
    // The page says so in words ("0–0 of 0 · page 1 of 1" before).
    const none = (await b.app.inject({ method: 'GET', url: `/dashboard/batches/${BATCH}?q=nothing-matches` })).body;
    expect(none).toContain('<p class="pager"><span class="range">no images match these filters</span></p>');
  });

  it('every link back to the table keeps the rows per page (?size=): state counts, failure groups, clear, pager', async () => {
    b = await startBench();
    await seed(b);
    const linksOf = async (url: string) => {
      const html = (await b!.app.inject({ method: 'GET', url })).body;
      return [...html.matchAll(/href="([^"]+)"/g)].map((m) => (m[1] as string).replace(/&amp;/g, '&')).filter((h) => h.startsWith(`/dashboard/batches/${BATCH}`));
    };
    // The 9 state counts, the failure group's code and reason, and "clear" (they dropped it: the trial's finding).
    const filtered = await linksOf(`/dashboard/batches/${BATCH}?state=failed&size=10`);
    expect(filtered.length).toBe(12);
    // 30 images at 10 a page: the pager's links too.
    const paged = await linksOf(`/dashboard/batches/${BATCH}?size=10&page=2`);
    expect(paged.filter((h) => /[?&]page=/.test(h)).length).toBeGreaterThanOrEqual(2);
    for (const href of [...filtered, ...paged]) expect(new URL(href, 'http://x.test').searchParams.get('size'), href).toBe('10');
  });

  it('the comparison page of a failed image says why it has no frames', async () => {
    b = await startBench();
    await seed(b);
    const html = (await b.app.inject({ method: 'GET', url: `/dashboard/batches/${BATCH}/compare/${imageId(1)}` })).body;
    expect(html).toContain('<p class="why" role="note"');
    expect(html).toContain('This image is failed: 422 — bad image. Thumbnails are made only for succeeded images whose output was downloaded');
    // Only the reason: no stage, slider or side-by-side pair of images that cannot load (they drew broken icons).
    expect(html).not.toContain('<img');
    expect(html).not.toContain('id="stage"');
    // A succeeded image whose thumbnails are missing says so, and draws no frame either.
    const ok = (await b.app.inject({ method: 'GET', url: `/dashboard/batches/${BATCH}/compare/${imageId(2)}` })).body;
    expect(ok).not.toContain('<img');
    expect(ok).toMatch(/This image succeeded but its output was not stored|its thumbnails are not there/);
  });

  it('searches a whole presigned URL (over 200 characters) pasted from the input file', async () => {
    b = await startBench();
    const signed =
      'https://bucket.s3.eu-west-1.amazonaws.com/catalogue/2026/IMG_4242.jpg?X-Amz-Algorithm=AWS4-HMAC-SHA256' +
      '&X-Amz-Credential=AKIAEXAMPLE%2F20261130%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Date=20261130T020000Z' +
      '&X-Amz-Expires=604800&X-Amz-SignedHeaders=host&X-Amz-Signature=' + 'ab'.repeat(32);
    expect(signed.length).toBeGreaterThan(300);
    await b.rt.store.createRecords(BATCH, [
      { jobId: imageId(1), input: signed, model: 'topaz/image-upscale', factor: '2', line: 2, meta: {} },
      { jobId: imageId(2), input: signed.replace('IMG_4242', 'IMG_4243'), model: 'topaz/image-upscale', factor: '2', line: 3, meta: {} },
    ]);
    const res = await b.app.inject({ method: 'GET', url: `/api/batches/${BATCH}/records?q=${encodeURIComponent(signed)}` });
    expect(res.statusCode).toBe(200);
    expect(res.json<{ total: number; records: { line: number }[] }>()).toMatchObject({ total: 1, records: [{ line: 2 }] });
    const tooLong = await b.app.inject({ method: 'GET', url: `/api/batches/${BATCH}/records?q=${'x'.repeat(8193)}` });
    expect(tooLong.json()).toEqual({ error: "q: longer than 8192 characters (a whole input line's limit)" });
  });

  it('exports exactly the filtered set', async () => {
    b = await startBench();
    await seed(b);
    const res = await b.app.inject({ method: 'GET', url: `/api/batches/${BATCH}/export?format=csv&failCode=422&order=desc` });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-disposition']).toBe(`attachment; filename="${BATCH}-filtered.csv"`);
    const rows = parse<Record<string, string>>(res.body, { columns: true, record_delimiter: '\r\n' });
    expect(rows.map((r) => r.line)).toEqual(['29', '26', '23', '20', '17', '14', '11', '8', '5', '2']);
    expect(rows.every((r) => r['meta.sku']?.startsWith('S-'))).toBe(true);
  });

  it('refuses "retry these" on a read-only dashboard and retries the view with --dashboard-write', async () => {
    b = await startBench();
    await seed(b);
    let res = await b.app.inject({ method: 'POST', url: `/api/batches/${BATCH}/retry?failCode=422` });
    expect(res.statusCode).toBe(405);
    expect(res.json().error).toMatch(/read-only/);
    await b.close();
    b = await startBench({}, { dashboardWrite: true });
    await seed(b);
    res = await b.app.inject({ method: 'POST', url: `/api/batches/${BATCH}/retry?failCode=422&q=s-10` });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ retried: 4, skipped: 0 }); // S-100, 103, 106, 109
    expect((await b.rt.store.getSummary(BATCH))?.counts.waiting).toBe(10 + 4);
    const job = await b.rt.queues.submit.getJob(submitJobId(imageId(1), 1));
    expect(job?.data).toMatchObject({ generation: 1, meta: { sku: 'S-100' } }); // meta travels with a retry
    res = await b.app.inject({ method: 'POST', url: `/api/batches/${BATCH}/retry?state=failed`, headers: { origin: 'https://evil.test', host: 'localhost' } });
    expect(res.statusCode).toBe(403);
  });

  it('serves thumbnails only by their exact names, and says why when there are none', async () => {
    b = await startBench();
    await seed(b);
    const get = (url: string) => b!.app.inject({ method: 'GET', url });
    expect((await get(`/dashboard/batches/${BATCH}/thumbs/${imageId(2)}/in.webp`)).json()).toEqual({ error: 'no thumbnails: neither OUTPUT_URL nor OUTPUT_DIR is set for upscale serve' });
    expect((await get(`/dashboard/batches/${BATCH}/thumbs/${imageId(2)}/..%2F..%2Fetc%2Fpasswd`)).statusCode).toBe(404);
    expect((await get(`/dashboard/batches/${BATCH}/thumbs/not-a-job/in.webp`)).statusCode).toBe(404);
  });

  it('indexes a batch written before the index on its first visit', async () => {
    b = await startBench();
    await seed(b);
    const ix = await b.rt.redis.keys(`${b.rt.store.keys.index(BATCH)}*`);
    await b.rt.redis.del(...ix);
    const res = await b.app.inject({ method: 'GET', url: `/dashboard/batches/${BATCH}?state=failed` });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('<span class="range">1–10 of 10</span>');
    expect(res.body).toContain('bad image');
  });
});
