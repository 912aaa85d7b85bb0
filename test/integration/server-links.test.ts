/**
 * Every link of the dashboard's own pages works, with and without a public prefix and whatever the page's URL looks
 * like (trial of issues 10/14, item A: the batch page's "All batches" was `href="./"`, which from
 * `/dashboard/batches/:id` is `/dashboard/batches/`, and that answered 400 `batch id "" must be 1-64 letters...`).
 *
 * The pages are crawled: from the batches page and a batch's page (asked for with and without a trailing slash),
 * every `href`, `src`, form `action` and button `data-url` must be an absolute path carrying the prefix (a relative
 * one resolves differently with a trailing slash), and following it (prefix stripped, as the proxy does) must
 * answer below 400. The pages typed with a trailing slash redirect to the page.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { THUMB_FILES, thumbPath } from '../../src/results/thumbs.js';
import { routesOf } from '../../src/server/access.js';
import { imageId, startBench, type Bench } from './server-fixtures.js';

const BATCH = 'links-batch';
const OTHER = 'links-other';

/** Every link-like attribute of a page: href, src, action, data-url (HTML-unescaped). */
function linksOf(html: string): string[] {
  const out: string[] = [];
  for (const m of html.matchAll(/\s(?:href|src|action|data-url)="([^"]*)"/g)) out.push((m[1] as string).replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'"));
  return out;
}

for (const prefix of ['', '/ops']) {
  describe(`dashboard links ${prefix === '' ? 'without a prefix' : `under PUBLIC_PATH=${prefix}`}`, () => {
    let b: Bench;
    let outputDir: string;

    beforeAll(async () => {
      outputDir = await mkdtemp(join(tmpdir(), 'upscale-links-'));
      b = await startBench({ OUTPUT_DIR: outputDir, ...(prefix ? { PUBLIC_PATH: prefix } : {}) }, { dashboardWrite: true, batchesOptions: { maxFinished: 1 } });
      const images = Array.from({ length: 12 }, (_, i) => ({ jobId: imageId(4000 + i), input: `https://img.test/l/${i}.png`, model: 'topaz/image-upscale' as const, factor: '2' as const }));
      await b.rt.store.createRecords(BATCH, images);
      const now = Date.now();
      for (let i = 0; i < 4; i++) {
        const jobId = imageId(4000 + i);
        await b.rt.store.transition(BATCH, jobId, { state: 'succeeded', outputPath: join(outputDir, BATCH, `${i}.png`), resultUrls: [`https://files.test/${i}.png`], completedAt: now, creditsConsumed: 10 });
        for (const file of THUMB_FILES) {
          const path = thumbPath(outputDir, BATCH, jobId, file);
          await mkdir(dirname(path), { recursive: true });
          await writeFile(path, 'webp');
        }
      }
      for (let i = 4; i < 7; i++) await b.rt.store.transition(BATCH, imageId(4000 + i), { state: 'failed', failCode: '500', failMsg: 'upstream error', completedAt: now });
      // Two finished batches, so the page hides one behind "show all" (maxFinished: 1).
      for (const id of [OTHER, `${OTHER}-2`]) {
        await b.rt.store.createRecords(id, [{ jobId: imageId(id.length * 100), input: 'https://img.test/o.png', model: 'topaz/image-upscale', factor: '2' }]);
        await b.rt.store.transition(id, imageId(id.length * 100), { state: 'failed', failCode: '422', failMsg: 'bad', completedAt: now });
      }
    }, 60_000);

    afterAll(async () => {
      await b?.close();
      await rm(outputDir, { recursive: true, force: true });
    });

    const get = (url: string) => b.app.inject({ method: 'GET', url });

    /** Checks every link of `html` (found at `where`), follows each once; returns the in-app paths. */
    async function checkLinks(html: string, where: string): Promise<string[]> {
      const paths: string[] = [];
      for (const link of linksOf(html)) {
        if (/^https?:\/\//.test(link)) {
          expect(link, `${where}: an external link is a result URL`).toMatch(/^https:\/\/files\.test\//);
          continue;
        }
        expect(link, `${where}: "${link}" must be absolute with the prefix`).toMatch(new RegExp(`^${prefix}/[^/]`));
        paths.push(link.slice(prefix.length));
      }
      for (const path of paths) {
        // The write buttons and forms are followed with GET only to prove they route (POST is tested elsewhere).
        const res = await get(path);
        expect(res.statusCode, `${where} → ${path}: ${res.body.slice(0, 120)}`).toBeLessThan(path.endsWith('/pause') || path.includes('/retry') ? 500 : 400);
      }
      return paths;
    }

    it('the trial sample: the batch page links "All batches" to the list, which answers 200', async () => {
      const page = await get(`/dashboard/batches/${BATCH}`);
      expect(page.statusCode).toBe(200);
      expect(page.body).toContain(`<a href="${prefix}/dashboard/batches">All batches</a>`);
      expect((await get('/dashboard/batches')).statusCode).toBe(200);
    });

    it('the pages typed with a trailing slash redirect to the page (query kept), never 400', async () => {
      for (const [typed, target] of [
        ['/dashboard/batches/', '/dashboard/batches'],
        ['/dashboard/batches/?all=1', '/dashboard/batches?all=1'],
        [`/dashboard/batches/${BATCH}/`, `/dashboard/batches/${BATCH}`],
        [`/dashboard/batches/${BATCH}/?state=failed`, `/dashboard/batches/${BATCH}?state=failed`],
        ['/api/batches/', '/api/batches'],
        [`/api/batches/${BATCH}/`, `/api/batches/${BATCH}`],
      ]) {
        const res = await get(typed as string);
        expect(res.statusCode, `${typed}: ${res.body.slice(0, 100)}`).toBe(302);
        expect(res.headers.location, typed).toBe(`${prefix}${target}`);
        expect((await get(target as string)).statusCode, target).toBe(200);
      }
    });

    it('every GET route under /dashboard/batches and /api/batches but the thumbnails, typed with a trailing slash, redirects to it (query kept)', async () => {
      const params: Record<string, string> = { id: BATCH, jobId: imageId(4000) };
      const routes = routesOf(b.app)
        .filter((r) => r.method === 'GET' && /^\/(dashboard|api)\/batches/.test(r.url) && !r.url.endsWith('/') && !r.url.includes('/thumbs/'))
        .map((r) => r.url);
      // The trial's sample (a JSON API typed with a slash answered 404) and the comparison page among them.
      expect(routes).toEqual(expect.arrayContaining(['/api/batches/:id/records', '/api/batches/:id/export', '/dashboard/batches/:id/compare/:jobId']));
      for (const route of routes) {
        const path = route.replace(/:([A-Za-z]+)/g, (_, name: string) => encodeURIComponent(params[name] ?? name));
        const res = await get(`${path}/?state=succeeded`);
        expect(res.statusCode, `${route}/: ${res.body.slice(0, 100)}`).toBe(302);
        expect(res.headers.location, route).toBe(`${prefix}${path}?state=succeeded`);
        expect((await get(`${path}?state=succeeded`)).statusCode, path).toBe(200);
      }
    });

    it('every link of the batches page, the batch page (filtered, paged) and the comparison page is absolute and answers', async () => {
      const list = await get('/dashboard/batches');
      const fromList = await checkLinks(list.body, '/dashboard/batches');
      expect(fromList).toEqual(expect.arrayContaining([`/dashboard/batches/${BATCH}`, '/dashboard/batches?all=1', `/dashboard/batches/${BATCH}/pause`, '/api/batches']));
      const all = await get('/dashboard/batches?all=1');
      await checkLinks(all.body, '/dashboard/batches?all=1');

      const page = await get(`/dashboard/batches/${BATCH}?size=10&page=1`);
      const fromPage = await checkLinks(page.body, 'the batch page');
      expect(fromPage).toEqual(expect.arrayContaining(['/dashboard/batches', `/api/batches/${BATCH}`, `/dashboard/batches/${BATCH}?state=failed&size=10`, `/dashboard/batches/${BATCH}?page=2&size=10`]));
      const compare = fromPage.find((p) => p.includes('/compare/'));
      expect(compare, 'a compare link').toBeDefined();
      const cmp = await get(compare as string);
      expect(cmp.statusCode).toBe(200);
      const fromCompare = await checkLinks(cmp.body, 'the comparison page');
      expect(fromCompare).toEqual(expect.arrayContaining([`/dashboard/batches/${BATCH}?size=10`, `/dashboard/batches/${BATCH}/thumbs/${imageId(4000)}/in.webp`]));

      const filtered = await get(`/dashboard/batches/${BATCH}?state=failed&failCode=500`);
      const fromFiltered = await checkLinks(filtered.body, 'the filtered batch page');
      expect(fromFiltered).toEqual(expect.arrayContaining([`/api/batches/${BATCH}/export?state=failed&failCode=500&format=csv`, `/api/batches/${BATCH}/retry?state=failed&failCode=500`]));
    });

    it('retry from the page redirects back to the page with the prefix', async () => {
      const res = await b.app.inject({ method: 'POST', url: `/api/batches/${BATCH}/retry?failCode=500`, headers: { accept: 'text/html' } });
      expect(res.statusCode, res.body).toBe(303);
      expect(res.headers.location).toBe(`${prefix}/dashboard/batches/${BATCH}?failCode=500&retried=3`);
    });
  });
}
