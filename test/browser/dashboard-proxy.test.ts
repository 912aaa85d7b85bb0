/**
 * The dashboard behind a reverse proxy under a prefix (issue 10), in Debian's headless Chromium: a loopback proxy
 * serves the app at /ops/ and strips the prefix (as nginx `location /ops/ { proxy_pass http://app/; }` does),
 * answering 404 to anything outside /ops/. With PUBLIC_PATH=/ops and basic auth, the browser opens Bull Board,
 * clicks into a lane, follows the Batches link, downloads a CSV export, opens a batch's page and comes back through
 * its "All batches" link (and the list typed with a trailing slash), opens the JSON API and comes back to the board,
 * and no request misses the prefix. The callback route stays outside basic auth through the proxy. Every
 * request to a host other than loopback is blocked. Skipped, with the reason, only when /usr/bin/chromium is absent.
 */
import { readFileSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageId, startBench, submitData, type Bench } from '../integration/server-fixtures.js';
import { HAVE_CHROMIUM, launchBrowser, type Browser } from '../helpers/browser.js';
import { listenLoopback } from '../helpers/listen.js';

const USER = 'ops';
const PASSWORD = 'proxy-pass-9';
const PREFIX = '/ops';

/** A prefix-stripping reverse proxy: `/ops/x` → upstream `/x`; everything else 404 (and remembered). */
function startProxy(upstreamPort: number): Promise<{ server: Server; url: string; misses: string[]; seen: string[] }> {
  const misses: string[] = [];
  const seen: string[] = [];
  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    seen.push(`${req.method} ${url}`);
    if (!url.startsWith(`${PREFIX}/`)) {
      misses.push(`${req.method} ${url}`);
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not under /ops/');
      return;
    }
    const upstream = httpRequest(
      { host: '127.0.0.1', port: upstreamPort, method: req.method, path: url.slice(PREFIX.length), headers: { ...req.headers, host: `127.0.0.1:${upstreamPort}` } },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  return listenLoopback(server).then((port) => ({ server, url: `http://127.0.0.1:${port}`, misses, seen }));
}

describe.skipIf(!HAVE_CHROMIUM)('dashboard behind a prefix-stripping proxy, in headless Chromium', () => {
  let b: Bench;
  let proxy: Awaited<ReturnType<typeof startProxy>>;
  let browser: Browser;
  let context: BrowserContext;
  const failed: string[] = [];

  beforeAll(async () => {
    b = await startBench({ DASHBOARD_USER: USER, DASHBOARD_PASSWORD: PASSWORD, PUBLIC_PATH: PREFIX });
    const images = Array.from({ length: 5 }, (_, i) => ({ jobId: imageId(7000 + i), input: `https://img.test/p/${i}.png`, model: 'topaz/image-upscale' as const, factor: '2' as const }));
    await b.rt.store.createRecords('proxied-batch', images);
    for (const img of images) await b.rt.queues.submit.add('submit', submitData(img.jobId, { batchId: 'proxied-batch' }), { jobId: img.jobId });
    await b.app.listen({ port: 0, host: '127.0.0.1' });
    proxy = await startProxy((b.app.server.address() as AddressInfo).port);
    browser = await launchBrowser({ credentials: { username: USER, password: PASSWORD }, acceptDownloads: true });
    context = browser.context;
    context.on('response', (res) => {
      if (res.url().startsWith(proxy.url) && res.status() >= 400) failed.push(`${res.status()} ${res.url()}`);
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    proxy?.server.closeAllConnections();
    await new Promise<void>((r) => (proxy ? proxy.server.close(() => r()) : r()));
    await b?.close();
  });

  it('is refused without credentials through the proxy', async () => {
    const res = await fetch(`${proxy.url}${PREFIX}/dashboard/`);
    expect(res.status).toBe(401);
  });

  it('clicks through Bull Board, the batches page, an export, the JSON API and back, all under /ops/', async () => {
    const page = await context.newPage();
    const res = await page.goto(`${proxy.url}${PREFIX}/dashboard/`);
    expect(res?.status()).toBe(200);
    const lane = page.getByRole('link', { name: /^submit/ }).first();
    await lane.waitFor({ timeout: 20_000 });
    await lane.click();
    await page.waitForURL(`${proxy.url}${PREFIX}/dashboard/queue/submit**`, { timeout: 15_000 });
    await page.waitForLoadState('networkidle');

    // Bull Board puts uiConfig.miscLinks in a dropdown, the last of the header's actions.
    await page.locator('ul[class*="actions-"] > li').last().locator('button').click();
    const batchesLink = page.getByText('Batches', { exact: true });
    await batchesLink.waitFor({ timeout: 10_000 });
    const anchor = page.locator('a', { has: batchesLink }).or(page.locator('a', { hasText: /^Batches$/ })).first();
    expect(await anchor.getAttribute('href')).toBe(`${PREFIX}/dashboard/batches`);
    await batchesLink.click();
    await page.waitForURL(`${proxy.url}${PREFIX}/dashboard/batches`, { timeout: 15_000 });
    const batch = page.locator('[data-batch-id="proxied-batch"]');
    await expect(batch.locator('.progress').innerText()).resolves.toContain('of 5 done');

    const [download] = await Promise.all([page.waitForEvent('download'), batch.getByRole('link', { name: 'CSV' }).click()]);
    expect(download.url()).toBe(`${proxy.url}${PREFIX}/api/batches/proxied-batch/export?format=csv`);
    const csv = readFileSync(await download.path(), 'utf8');
    expect(csv.split('\r\n').filter(Boolean)).toHaveLength(6);

    // The batch's own page and back through its "All batches" link (it was href="./": /ops/dashboard/batches/, a 400).
    await batch.getByRole('link', { name: 'proxied-batch' }).click();
    await page.waitForURL(`${proxy.url}${PREFIX}/dashboard/batches/proxied-batch`, { timeout: 15_000 });
    await page.getByRole('link', { name: 'All batches' }).click();
    await page.waitForURL(`${proxy.url}${PREFIX}/dashboard/batches`, { timeout: 15_000 });
    await page.locator('[data-batch-id="proxied-batch"]').waitFor({ timeout: 10_000 });
    // The list typed with a trailing slash is redirected to it.
    await page.goto(`${proxy.url}${PREFIX}/dashboard/batches/`);
    await page.waitForURL(`${proxy.url}${PREFIX}/dashboard/batches`, { timeout: 15_000 });
    await page.locator('[data-batch-id="proxied-batch"]').waitFor({ timeout: 10_000 });

    await page.locator('nav').getByRole('link', { name: 'JSON', exact: true }).click();
    await page.waitForURL(`${proxy.url}${PREFIX}/api/batches`);
    const listed = JSON.parse(await page.locator('body').innerText()) as { batches: { batchId: string }[] };
    expect(listed.batches.map((x) => x.batchId)).toContain('proxied-batch');

    await page.goBack();
    await page.getByRole('link', { name: 'Queues (Bull Board)' }).click();
    await page.waitForURL(`${proxy.url}${PREFIX}/dashboard`);
    await page.getByRole('link', { name: /^poll/ }).first().waitFor({ timeout: 20_000 });
    await page.waitForLoadState('networkidle');

    expect(proxy.misses, 'requests that lost the /ops prefix').toEqual([]);
    expect(failed, 'answers >= 400 through the proxy').toEqual([]);
    expect(proxy.seen.some((r) => r.startsWith(`GET ${PREFIX}/dashboard/api/queues`))).toBe(true);
    expect(proxy.seen.some((r) => r.startsWith(`GET ${PREFIX}/dashboard/static/`))).toBe(true);
    await page.close();
  });

  it('the callback route stays outside basic auth through the proxy', async () => {
    const res = await fetch(`${proxy.url}${PREFIX}/callbacks/kie/${'a'.repeat(24)}?t=wrong`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBeNull();
    expect(await res.json()).toEqual({ code: 401, msg: 'invalid callback token' });
  });
});
