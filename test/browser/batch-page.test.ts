/**
 * The page of one batch in Debian's headless Chromium (playwright-core): filtering by state through the form,
 * search by SKU and file name, paging, the failure links, export of the filtered set, "retry these" in write mode,
 * and the before/after comparison. Screenshots go to test-results/ (batch-page.png, batch-compare.png; copied to
 * docs/ with UPDATE_DOCS=1). Skipped, with the reason, only when /usr/bin/chromium is absent.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import type { BrowserContext, Page } from 'playwright-core';
import sharp, { type Sharp } from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { thumbPath } from '../../src/results/thumbs.js';
import { imageId, startBench, type Bench } from '../integration/server-fixtures.js';
import { artifactPath, publishArtifact } from '../helpers/artifacts.js';
import { HAVE_CHROMIUM, launchBrowser, type Browser } from '../helpers/browser.js';

const USER = 'ops';
const PASSWORD = 'dashboard-pass-42';
const BATCH = 'spring-catalog';
const N = 240;

/** i%12: 0-7 succeeded, 8 failed 422 "not supported", 9 failed 422 "too large", 10 failed 500, 11 timed out; the last 20 still polling. */
function planOf(i: number): 'succeeded' | '422a' | '422b' | '500' | 'timed_out' | 'polling' {
  if (i >= N - 20) return 'polling';
  return (['succeeded', 'succeeded', 'succeeded', 'succeeded', 'succeeded', 'succeeded', 'succeeded', 'succeeded', '422a', '422b', '500', 'timed_out'] as const)[i % 12]!;
}

function picture(i: number, px: number): Sharp {
  const hue = (i * 47) % 360;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${px}" height="${px}" viewBox="0 0 100 100">
<rect width="100" height="100" fill="hsl(${hue},45%,85%)"/><circle cx="50" cy="45" r="28" fill="hsl(${hue},70%,45%)"/>
<rect x="20" y="78" width="60" height="8" rx="3" fill="hsl(${(hue + 180) % 360},60%,40%)"/><text x="50" y="52" font-size="14" text-anchor="middle" fill="#fff" font-family="sans-serif">SKU ${12000 + i}</text></svg>`;
  return sharp(Buffer.from(svg));
}

async function seed(b: Bench, outputDir: string): Promise<void> {
  const now = Date.now();
  const images = Array.from({ length: N }, (_, i) => ({
    jobId: imageId(1000 + i),
    input: `https://img.test/catalog/IMG_${String(i).padStart(4, '0')}.jpg`,
    model: 'topaz/image-upscale' as const,
    factor: '4' as const,
    line: i + 2,
    meta: { sku: String(12000 + i), colour: i % 3 === 0 ? 'red' : 'blue' },
  }));
  await b.rt.store.createRecords(BATCH, images, now - 40 * 60_000);
  mkdirSync(join(outputDir, BATCH, '.thumbs'), { recursive: true });
  for (const [i, img] of images.entries()) {
    const t = now - 35 * 60_000 + i * 8_000;
    await b.rt.store.transition(BATCH, img.jobId, { state: 'submitting', $inc: { submitAttempts: 1 } }, { now: t });
    await b.rt.store.transition(BATCH, img.jobId, { state: 'polling', taskId: `task-${i}`, submittedAt: t }, { now: t });
    const done = t + 60_000 + (i % 5) * 20_000;
    const plan = planOf(i);
    if (plan === 'succeeded') {
      const outputPath = join(outputDir, BATCH, `${img.jobId}-IMG_${String(i).padStart(4, '0')}.png`);
      await b.rt.store.transition(BATCH, img.jobId, { state: 'succeeded', creditsConsumed: 20, costTimeMs: done - t, completedAt: done, resultUrls: [`https://r.test/${i}.png`], outputPath }, { now: done });
      if (i < 60) {
        const low = await (picture(i, 40)).png().toBuffer();
        await sharp(low).resize(640, 640, { kernel: 'nearest' }).webp().toFile(thumbPath(outputDir, BATCH, img.jobId, 'in.webp'));
        await sharp(low).resize(96, 96, { kernel: 'nearest' }).webp().toFile(thumbPath(outputDir, BATCH, img.jobId, 'in-small.webp'));
        await (picture(i, 640)).webp().toFile(thumbPath(outputDir, BATCH, img.jobId, 'out.webp'));
        await (picture(i, 96)).webp().toFile(thumbPath(outputDir, BATCH, img.jobId, 'out-small.webp'));
      }
    }
    if (plan === '422a') await b.rt.store.transition(BATCH, img.jobId, { state: 'failed', failCode: '422', failMsg: 'The input image is not supported', creditsConsumed: 0, completedAt: done }, { now: done });
    if (plan === '422b') await b.rt.store.transition(BATCH, img.jobId, { state: 'failed', failCode: '422', failMsg: 'Image too large: over 10 MB', creditsConsumed: 0, completedAt: done }, { now: done });
    if (plan === '500') await b.rt.store.transition(BATCH, img.jobId, { state: 'failed', failCode: '500', failMsg: 'Internal error, please try again later', completedAt: done }, { now: done });
    if (plan === 'timed_out') await b.rt.store.transition(BATCH, img.jobId, { state: 'timed_out', failCode: 'timed_out', failMsg: 'task still generating after POLL_DEADLINE', completedAt: done }, { now: done });
  }
}

/** The parts of DOM elements the page scripts below use (the tests compile without the DOM library). */
type Img = { decode(): Promise<void>; naturalWidth: number; naturalHeight: number };
type Styled = { style: { getPropertyValue(name: string): string } };
type Win = { getComputedStyle(e: unknown): { transform: string } };

const count = (plan: ReturnType<typeof planOf>) => Array.from({ length: N }, (_, i) => planOf(i)).filter((p) => p === plan).length;

async function rowsOf(page: Page): Promise<{ line: string; state: string }[]> {
  type Row = { querySelector(s: string): { textContent: string | null } | null; getAttribute(n: string): string | null };
  return page.locator('table.records tbody tr[data-job-id]').evaluateAll((trs) =>
    (trs as unknown as Row[]).map((tr) => ({ line: tr.querySelector('td')?.textContent ?? '', state: tr.getAttribute('data-state') ?? '' })),
  );
}

describe.skipIf(!HAVE_CHROMIUM)('batch page in headless Chromium', () => {
  let b: Bench;
  let url: string;
  let browser: Browser;
  let outputDir: string;
  let context: BrowserContext;

  beforeAll(async () => {
    outputDir = mkdtempSync(join(tmpdir(), 'upscale-batch-page-'));
    b = await startBench({ DASHBOARD_USER: USER, DASHBOARD_PASSWORD: PASSWORD, OUTPUT_DIR: outputDir }, { dashboardWrite: true });
    await seed(b, outputDir);
    await b.app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(b.app.server.address() as AddressInfo).port}`;
    browser = await launchBrowser({ credentials: { username: USER, password: PASSWORD }, viewport: { width: 1360, height: 900 } });
    context = browser.context;
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await b?.close();
    if (outputDir) rmSync(outputDir, { recursive: true, force: true });
  });

  it('is refused without credentials', async () => {
    expect((await fetch(`${url}/dashboard/batches/${BATCH}`)).status).toBe(401);
    expect((await fetch(`${url}/dashboard/batches/${BATCH}/thumbs/${imageId(1000)}/in.webp`)).status).toBe(401);
  });

  it('opens from the batches list and pages through the table', async () => {
    const page = await context.newPage();
    await page.goto(`${url}/dashboard/batches?refresh=0`);
    await page.getByRole('link', { name: BATCH }).click();
    await page.waitForURL(`${url}/dashboard/batches/${BATCH}`);
    await expect(page.locator('.pager .range').first().innerText()).resolves.toBe(`1–50 of ${N}`);
    expect((await rowsOf(page))[0]?.line).toBe('2');
    await page.getByRole('link', { name: 'next →' }).first().click();
    await expect(page.locator('.pager .range').first().innerText()).resolves.toBe(`51–100 of ${N}`);
    expect((await rowsOf(page))[0]?.line).toBe('52');
    await page.getByRole('link', { name: '← previous' }).first().click();
    await expect(page.locator('.pager .range').first().innerText()).resolves.toBe(`1–50 of ${N}`);
    await expect(page.locator('.chart').getAttribute('data-bins')).resolves.toMatch(/^\d+$/);
    await expect(page.locator('.chart .eta').innerText()).resolves.toMatch(/^20 to go · ETA /);
    await page.close();
  });

  it('filters by state with the form and sorts by finish time', async () => {
    const page = await context.newPage();
    await page.goto(`${url}/dashboard/batches/${BATCH}`);
    await page.selectOption('select[name=state]', 'timed_out');
    await page.selectOption('select[name=sort]', 'finished');
    await page.selectOption('select[name=order]', 'desc');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.waitForURL(/state=timed_out/);
    const rows = await rowsOf(page);
    expect(rows).toHaveLength(count('timed_out'));
    expect(rows.every((r) => r.state === 'timed_out')).toBe(true);
    await expect(page.locator('.pager .range').first().innerText()).resolves.toBe(`1–${count('timed_out')} of ${count('timed_out')}`);
    await page.close();
  });

  it('searches by SKU and by file name', async () => {
    const page = await context.newPage();
    await page.goto(`${url}/dashboard/batches/${BATCH}`);
    await page.fill('input[name=q]', '12137');
    await page.press('input[name=q]', 'Enter');
    await page.waitForURL(/q=12137/);
    let rows = await rowsOf(page);
    expect(rows).toEqual([{ line: '139', state: planOf(137) }]);
    await page.fill('input[name=q]', 'img_010');
    await page.press('input[name=q]', 'Enter');
    await page.waitForURL(/q=img_010/);
    rows = await rowsOf(page);
    expect(rows.map((r) => r.line)).toEqual(Array.from({ length: 10 }, (_, k) => String(102 + k)));
    // A page opened with ?size=10 keeps its size through a search typed into the form (it fell back to 50).
    await page.goto(`${url}/dashboard/batches/${BATCH}?size=10`);
    await page.fill('input[name=q]', 'img_01');
    await page.press('input[name=q]', 'Enter');
    await page.waitForURL(/q=img_01/);
    expect(new URL(page.url()).searchParams.get('size')).toBe('10');
    expect(await rowsOf(page)).toHaveLength(10);
    await page.close();
  });

  it('counts failures by failCode and reason, each a link to the filtered table; exports exactly that set', async () => {
    const page = await context.newPage();
    await page.goto(`${url}/dashboard/batches/${BATCH}`);
    const failures = page.locator('.failures tbody tr');
    await expect(failures.count()).resolves.toBe(4);
    const texts = await failures.allInnerTexts();
    expect(texts.map((t) => t.split('\t').map((c) => c.trim()))).toEqual(
      expect.arrayContaining([
        ['422', 'The input image is not supported', String(count('422a'))],
        // A reason with a variable part is grouped by its pattern and shown with one real reason as its example.
        ['422', 'Image too large: over <size>\ne.g. Image too large: over 10 MB', String(count('422b'))],
        ['500', 'Internal error, please try again later', String(count('500'))],
        ['timed_out', 'task still generating after POLL_DEADLINE', String(count('timed_out'))],
      ]),
    );
    await page.getByRole('link', { name: 'Image too large: over <size>' }).click();
    await page.waitForURL(/group=/);
    let rows = await rowsOf(page);
    expect(rows).toHaveLength(count('422b'));
    expect(await page.locator('table.records td.fail').allInnerTexts()).toEqual(Array(count('422b')).fill('422 Image too large: over 10 MB'));
    await page.goto(`${url}/dashboard/batches/${BATCH}`);
    await page.locator('.failures a.code', { hasText: '422' }).first().click();
    await page.waitForURL(/failCode=422/);
    rows = await rowsOf(page);
    expect(rows).toHaveLength(count('422a') + count('422b'));
    const href = await page.getByRole('link', { name: 'CSV' }).getAttribute('href');
    const csv = await page.request.get(new URL(href!, page.url()).href);
    expect(csv.status()).toBe(200);
    const exported = parse<Record<string, string>>(await csv.text(), { columns: true, record_delimiter: '\r\n' });
    expect(exported).toHaveLength(count('422a') + count('422b'));
    expect(exported.every((r) => r.failCode === '422' && /^120\d\d|^121\d\d|^122\d\d/.test(r['meta.sku']!))).toBe(true);
    await page.close();
  });

  it('retries these in write mode: the failed images of the view get a new task', async () => {
    const page = await context.newPage();
    await page.goto(`${url}/dashboard/batches/${BATCH}?failCode=500`);
    await page.getByRole('button', { name: 'Retry these' }).click();
    await page.waitForURL(/retried=/);
    await expect(page.locator('.notice').innerText()).resolves.toBe(`${count('500')} images of this view given a new task.`);
    const waiting = await b.rt.store.getSummary(BATCH);
    expect(waiting?.counts.waiting).toBe(count('500'));
    expect((await rowsOf(page))).toHaveLength(0); // they left the failure group
    // a cross-site post is refused
    const res = await fetch(`${url}/api/batches/${BATCH}/retry?failCode=422`, {
      method: 'POST',
      headers: { origin: 'https://evil.test', authorization: `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}` },
    });
    expect(res.status).toBe(403);
    await page.close();
  });

  it('opens the before/after comparison from the table', async () => {
    const page = await context.newPage();
    await page.goto(`${url}/dashboard/batches/${BATCH}?state=succeeded`);
    const first = page.locator('table.records tbody tr').first();
    const thumbs = first.locator('.thumbs img');
    await expect(thumbs.count()).resolves.toBe(2);
    await expect(thumbs.first().evaluate((el) => { const img = el as unknown as Img; return img.decode().then(() => img.naturalWidth); })).resolves.toBe(96);
    await first.getByRole('link', { name: 'compare' }).click();
    await page.waitForURL(/\/compare\//);
    const sizes = await page.locator('#stage img').evaluateAll((imgs) =>
      Promise.all((imgs as unknown as Img[]).map((i) => i.decode().then(() => [i.naturalWidth, i.naturalHeight]))),
    );
    expect(sizes).toEqual([[640, 640], [640, 640]]);
    await page.locator('#split').fill('30');
    await expect(page.locator('#stage').evaluate((el) => (el as unknown as Styled).style.getPropertyValue('--split'))).resolves.toBe('30%');
    await page.selectOption('#zoom', '2');
    await expect(page.locator('#stage .after').evaluate((el) => (globalThis as unknown as Win).getComputedStyle(el).transform)).resolves.toBe('matrix(2, 0, 0, 2, 0, 0)');
    await page.selectOption('#zoom', '1');
    await page.locator('#split').fill('50');
    await page.screenshot({ path: artifactPath('docs/batch-compare.png') });
    await page.getByRole('link', { name: '← back to the batch' }).click();
    await page.waitForURL(`${url}/dashboard/batches/${BATCH}?state=succeeded`);
    await page.goto(`${url}/dashboard/batches/${BATCH}`);
    await page.locator('table.records tbody tr .thumbs img').first().evaluate((el) => (el as unknown as Img).decode());
    await page.screenshot({ path: artifactPath('docs/batch-page.png') });
    await publishArtifact('docs/batch-page.png');
    await publishArtifact('docs/batch-compare.png');
    await page.close();
  });
});
