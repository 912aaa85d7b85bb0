/**
 * The dashboard in a real browser: Debian's headless Chromium driven by playwright-core logs in with basic auth,
 * sees the lanes' queues in Bull Board and a batch's progress on the batches page, and screenshots both into
  * test-results/ (dashboard.png, batches.png; copied to docs/ with UPDATE_DOCS=1). Skipped, with the reason, only when /usr/bin/chromium is absent.
 */
import type { AddressInfo } from 'node:net';
import type { BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pauseLane } from '../../src/queue/pause-reason.js';
import type { RecordState } from '../../src/results/record.js';
import { imageId, pollData, startBench, submitData, type Bench } from '../integration/server-fixtures.js';
import { artifactPath, publishArtifact } from '../helpers/artifacts.js';
import { HAVE_CHROMIUM, launchBrowser, type Browser } from '../helpers/browser.js';

const USER = 'ops';
const PASSWORD = 'dashboard-pass-42';

/** 120 images: 70 succeeded, 8 failed, 3 timed out, 15 polling, 6 submitting, 18 waiting; and a finished batch. */
async function seed(b: Bench): Promise<void> {
  const plan: [RecordState, number][] = [
    ['succeeded', 70],
    ['failed', 8],
    ['timed_out', 3],
    ['polling', 15],
    ['submitting', 6],
    ['waiting', 18],
  ];
  const states = plan.flatMap(([state, n]) => Array.from({ length: n }, () => state));
  const now = Date.now();
  const id = (i: number) => imageId(1000 + i);
  const images = states.map((_, i) => ({
    jobId: id(i),
    input: `https://img.test/catalog/${i}.jpg`,
    model: 'topaz/image-upscale' as const,
    factor: '4' as const,
  }));
  await b.rt.store.createRecords('spring-catalog', images, now - 300_000);
  const submitAt = (i: number) => now - 240_000 + i * 1500;
  // In time order, as the lanes would write them: submissions, then tasks followed, then completions.
  for (const [i, state] of states.entries()) {
    if (state !== 'waiting')
      await b.rt.store.transition(
        'spring-catalog',
        id(i),
        { state: 'submitting', $inc: { submitAttempts: 1 } },
        { now: submitAt(i) },
      );
  }
  for (const [i, state] of states.entries()) {
    if (state !== 'waiting' && state !== 'submitting') {
      await b.rt.store.transition(
        'spring-catalog',
        id(i),
        { state: 'polling', taskId: `task-${i}`, submittedAt: submitAt(i) + 800 },
        { now: submitAt(i) + 800 },
      );
    }
  }
  for (const [i, state] of states.entries()) {
    const at = submitAt(i) + 60_000;
    if (state === 'succeeded')
      await b.rt.store.transition(
        'spring-catalog',
        id(i),
        {
          state,
          creditsConsumed: 20,
          resultUrls: [`https://r.test/${i}.png`],
          completedAt: at,
          $inc: { polls: 2 },
        },
        { now: at },
      );
    if (state === 'failed')
      await b.rt.store.transition(
        'spring-catalog',
        id(i),
        {
          state,
          failCode: '422',
          failMsg: 'The input image is not supported',
          creditsConsumed: 0,
          completedAt: at,
        },
        { now: at },
      );
    if (state === 'timed_out')
      await b.rt.store.transition(
        'spring-catalog',
        id(i),
        { state, failCode: 'timed_out', failMsg: 'task still generating', completedAt: at },
        { now: at },
      );
  }
  const small = Array.from({ length: 12 }, (_, k) => ({
    jobId: imageId(5000 + k),
    input: `https://img.test/logo/${k}.png`,
    model: 'recraft/crisp-upscale' as const,
    factor: null,
  }));
  await b.rt.store.createRecords('logos-test', small, now - 900_000);
  for (const [k, img] of small.entries()) {
    await b.rt.store.transition(
      'logos-test',
      img.jobId,
      { state: 'submitting' },
      { now: now - 880_000 + k * 500 },
    );
    await b.rt.store.transition(
      'logos-test',
      img.jobId,
      {
        state: 'succeeded',
        taskId: `t-${k}`,
        creditsConsumed: 0.5,
        submittedAt: now - 880_000,
        completedAt: now - 860_000 + k * 500,
      },
      { now: now - 860_000 + k * 500 },
    );
  }
  for (let k = 0; k < 18; k++)
    await b.rt.queues.submit.add('submit', submitData(imageId(1100 + k)), { jobId: imageId(1100 + k) });
  for (let k = 0; k < 15; k++)
    await b.rt.queues.poll.add('poll', pollData(imageId(1081 + k), `task-${81 + k}`), {
      jobId: `${imageId(1081 + k)}-p`,
      delay: 60_000,
    });
  await pauseLane(b.rt.redis, b.rt.store.keys, b.rt.queues.submit, 'submit', {
    code: '402',
    message: 'kie.ai: insufficient credits; add credits, then run `upscale resume`',
  });
}

describe.skipIf(!HAVE_CHROMIUM)('dashboard in headless Chromium', () => {
  let b: Bench;
  let url: string;
  let browser: Browser;
  let context: BrowserContext;

  beforeAll(async () => {
    b = await startBench({ DASHBOARD_USER: USER, DASHBOARD_PASSWORD: PASSWORD });
    await seed(b);
    await b.app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(b.app.server.address() as AddressInfo).port}`;
    browser = await launchBrowser({ credentials: { username: USER, password: PASSWORD } });
    context = browser.context;
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await b?.close();
  });

  it('is refused without credentials', async () => {
    const res = await fetch(`${url}/dashboard/`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Basic /);
  });

  it('logs in and shows every lane in Bull Board', async () => {
    const page = await context.newPage();
    const res = await page.goto(`${url}/dashboard/`);
    expect(res?.status()).toBe(200);
    for (const lane of ['submit', 'poll', 'download']) {
      await page
        .getByRole('link', { name: new RegExp(`^${lane}`) })
        .first()
        .waitFor({ timeout: 15_000 });
    }
    await expect(page.title()).resolves.toBe('kie-upscale-queue');
    await page.waitForLoadState('networkidle');
    await page.screenshot({ path: artifactPath('docs/dashboard.png') });
    await publishArtifact('docs/dashboard.png');
    await page.close();
  });

  it('shows the batch progress, counts, credits and the paused lane on the batches page', async () => {
    const page = await context.newPage();
    const res = await page.goto(`${url}/dashboard/batches?refresh=0`);
    expect(res?.status()).toBe(200);
    const batch = page.locator('[data-batch-id="spring-catalog"]');
    await expect(batch.locator('.progress').innerText()).resolves.toBe('81 of 120 done (67.5%)');
    await expect(batch.locator('.bar').getAttribute('aria-valuenow')).resolves.toBe('81');
    await expect(batch.locator('.count-polling').innerText()).resolves.toBe('15');
    await expect(batch.locator('.count-failed').innerText()).resolves.toBe('8');
    await expect(batch.innerText()).resolves.toContain('1400');
    const segments: number[] = [];
    for (const seg of await batch.locator('.bar .seg').all())
      segments.push((await seg.boundingBox())?.width ?? 0);
    expect(segments.length).toBe(5);
    expect(segments[0]).toBeGreaterThan(segments[1]!);
    await expect(page.locator('[data-lane="submit"]').innerText()).resolves.toContain(
      '402: kie.ai: insufficient credits',
    );
    await expect(page.locator('[data-batch-id="logos-test"] .badge').innerText()).resolves.toMatch(
      /finished/i,
    );
    const exportHref = await batch.getByRole('link', { name: 'CSV' }).getAttribute('href');
    expect(exportHref).toBe('/api/batches/spring-catalog/export?format=csv');
    const csv = await page.request.get(`${url}${exportHref}`);
    expect(csv.status()).toBe(200);
    expect((await csv.text()).split('\r\n').filter(Boolean)).toHaveLength(121);
    await page.screenshot({ path: artifactPath('docs/batches.png'), fullPage: true });
    await publishArtifact('docs/batches.png');
    await page.close();
  });
});
