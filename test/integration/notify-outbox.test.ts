import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { BatchWatch } from '../../src/batch/watch.js';
import { loadConfig, ConfigError } from '../../src/config/index.js';
import { pause } from '../../src/control/index.js';
import { Deliverer, batchStalled, emit, emitOnce, eventBody, getEvent, makeSigner, outboxSummary, webhookHeaders, type NotifyEvent } from '../../src/notify/index.js';
import { laneStatus } from '../../src/queue/lane-status.js';
import { describeDelivery, renderNotifications } from '../../src/results/status-view.js';
import { renderBatchesPage } from '../../src/server/batches-page.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { deletePrefix, freshPrefix, testRedisUrl, waitFor } from '../helpers/redis.js';
import { startReceiver, type Receiver } from '../helpers/webhook-receiver.js';
import { closedPort } from '../helpers/ports.js';

const SECRET = `whsec_${randomBytes(24).toString('base64')}`;
let receiver: Receiver;
let prefix: string;
let rt: Runtime;

function runtime(env: Record<string, string> = {}): Runtime {
  return createRuntime(
    loadConfig({}, { REDIS_URL: testRedisUrl(), UPSCALE_PREFIX: prefix, NOTIFY_URL: receiver.url, NOTIFY_SECRET: SECRET, RETRY_BACKOFF: '20ms', MAX_BACKOFF: '100ms', ...env }),
    { log: pino({ level: 'silent' }) },
  );
}

const event = (id: string): NotifyEvent => ({ id, type: 'batch.completed', at: Date.now(), batchId: 'b1', text: 'Batch b1 finished', data: { total: 1 } });

beforeAll(async () => {
  receiver = await startReceiver(SECRET);
});
afterAll(() => receiver.close());
afterEach(async () => {
  await rt?.close();
  await deletePrefix(testRedisUrl(), prefix);
  receiver.received.length = 0;
});

describe('notification outbox', () => {
  it('signs in the Standard Webhooks form (verifiable with standardwebhooks), and has a Slack form', () => {
    const body = eventBody(event('evt.x'), 'json');
    const headers = webhookHeaders('evt.x', body, makeSigner(SECRET), Date.now());
    expect(new Webhook(SECRET).verify(body, headers)).toMatchObject({ type: 'batch.completed', id: 'evt.x', batchId: 'b1', data: { total: 1 } });
    expect(() => new Webhook(`whsec_${randomBytes(24).toString('base64')}`).verify(body, headers)).toThrow();
    // A secret without whsec_ is used as raw bytes.
    const raw = webhookHeaders('evt.x', body, makeSigner('plain secret text'), Date.now());
    expect(new Webhook('plain secret text', { format: 'raw' }).verify(body, raw)).toBeTruthy();
    expect(JSON.parse(eventBody(event('evt.x'), 'slack'))).toEqual({ text: 'Batch b1 finished' });
    expect(webhookHeaders('evt.x', body, null, 0)['webhook-signature']).toBeUndefined();
  });

  it('reads NOTIFY_URL as a comma list and refuses bad values by name', () => {
    const c = loadConfig({}, { NOTIFY_URL: 'https://a.example/h, https://b.example/h https://a.example/h' });
    expect(c.notifyUrls).toEqual(['https://a.example/h', 'https://b.example/h']);
    expect(() => loadConfig({}, { NOTIFY_URL: 'https://ok.example,ftp://nope', NOTIFY_SECRET: 'whsec_***', NOTIFY_FORMAT: 'xml' })).toThrow(ConfigError);
    try {
      loadConfig({}, { NOTIFY_URL: 'https://ok.example,ftp://nope', NOTIFY_SECRET: 'whsec_***', NOTIFY_FORMAT: 'xml' });
    } catch (e) {
      const text = (e as Error).message;
      expect(text).toMatch(/NOTIFY_URL: .*"ftp:\/\/nope" is not an http\(s\) URL/);
      expect(text).toMatch(/NOTIFY_SECRET: .*not base64/);
      expect(text).toMatch(/NOTIFY_FORMAT/);
    }
  });

  it('the trial: two targets, one dead: the event is delivered to one and FAILED to the other, shown per target', async () => {
    // A loopback port nobody listens on: connections are refused.
    const deadPort = await closedPort();
    prefix = freshPrefix('nt');
    rt = runtime({ NOTIFY_URL: `${receiver.url},http://127.0.0.1:${deadPort}/hook`, NOTIFY_RETRY_FOR: '400ms' });
    await emit(rt, event('evt.two'));
    const deliverer = new Deliverer(rt, { tickMs: 20 });
    deliverer.start();
    try {
      await waitFor(async () => {
        const e = await getEvent(rt, 'evt.two');
        return e?.deliveries.every((d) => d.state !== 'pending') ? e : null;
      }, { timeoutMs: 15_000, what: 'both deliveries settled' });
    } finally {
      await deliverer.stop();
    }
    const summary = await outboxSummary(rt);
    const recent = summary.recent[0];
    expect(recent).toMatchObject({ delivered: 1, failed: 1 });
    expect(recent?.targets).toEqual([
      { target: `${new URL(receiver.url).origin}/…`, state: 'delivered', attempts: 1, lastError: null },
      { target: `http://127.0.0.1:${deadPort}/…`, state: 'failed', attempts: expect.any(Number) as number, lastError: 'ECONNREFUSED' },
    ]);
    const line = renderNotifications(summary, Date.now());
    expect(line).toContain(`delivered to #1 ${new URL(receiver.url).origin}/…; FAILED to #2 http://127.0.0.1:${deadPort}/… (ECONNREFUSED)`);
    expect(line).not.toMatch(/· FAILED \(/);
    const page = renderBatchesPage({ batches: [], lanes: await laneStatus(rt), now: Date.now(), notifications: summary });
    expect(page).toContain(`<span class="delivery">delivered to #1 ${new URL(receiver.url).origin}/…; FAILED to #2 http://127.0.0.1:${deadPort}/… (ECONNREFUSED)</span>`);
    // All targets in one state still read as one word.
    expect(describeDelivery({ ...recent!, targets: recent!.targets.map((t) => ({ ...t, state: 'delivered' as const })), failed: 0, delivered: 2 }, 2)).toBe('delivered');
  });

  it('stores an occurrence once however often it is emitted, and delivers it once per target', async () => {
    prefix = freshPrefix('nt');
    rt = runtime();
    const results = await Promise.all(Array.from({ length: 10 }, () => emit(rt, event('evt.once'))));
    expect(results.filter(Boolean)).toHaveLength(1);
    const deliverers = [new Deliverer(rt, { tickMs: 20 }), new Deliverer(rt, { tickMs: 20 })];
    deliverers.forEach((d) => d.start());
    try {
      await waitFor(async () => (await getEvent(rt, 'evt.once'))?.deliveries[0]?.state === 'delivered', { what: 'delivery' });
    } finally {
      await Promise.all(deliverers.map((d) => d.stop()));
    }
    expect(receiver.received.map((r) => r.id)).toEqual(['evt.once']);
    expect(receiver.received[0]?.verified).toBe(true);
  });

  it('retries with backoff past refusals, and gives up after NOTIFY_RETRY_FOR with the last error', async () => {
    prefix = freshPrefix('nt');
    rt = runtime({ NOTIFY_RETRY_FOR: '1500ms' });
    receiver.failNext(3, 500);
    await emit(rt, event('evt.retry'));
    const d = new Deliverer(rt, { tickMs: 10 });
    d.start();
    try {
      const e = await waitFor(async () => {
        const s = await getEvent(rt, 'evt.retry');
        return s?.deliveries[0]?.state === 'delivered' ? s : null;
      }, { what: 'delivery after refusals', timeoutMs: 5000 }).catch(async (e: unknown) => {
        console.log(JSON.stringify(await getEvent(rt, 'evt.retry')), receiver.received.map((r) => r.status));
        throw e;
      });
      expect(e.deliveries[0]?.attempts).toBe(4);
      receiver.failNext(1000, 502);
      await emit(rt, event('evt.never'));
      const f = await waitFor(async () => {
        const s = await getEvent(rt, 'evt.never');
        return s?.deliveries[0]?.state === 'failed' ? s : null;
      }, { what: 'giving up' });
      expect(f.deliveries[0]?.lastError).toBe('HTTP 502');
      expect(await rt.redis.zcard(rt.store.keys.notifyDue)).toBe(0);
    } finally {
      await d.stop();
      receiver.failNext(0);
    }
  });

  it('a delivery taken by a process that died is taken again when its lease ends (at least once)', async () => {
    prefix = freshPrefix('nt');
    rt = runtime();
    await emit(rt, event('evt.lease'));
    // A dead taker: the member's due time was pushed to its lease end, and nothing settled it.
    await rt.redis.zadd(rt.store.keys.notifyDue, 'XX', Date.now() + 300, 'evt.lease 0');
    const d = new Deliverer(rt, { tickMs: 20 });
    d.start();
    try {
      await waitFor(async () => (await getEvent(rt, 'evt.lease'))?.deliveries[0]?.state === 'delivered', { what: 'redelivery' });
    } finally {
      await d.stop();
    }
    expect(receiver.received.map((r) => r.id)).toEqual(['evt.lease']);
  });

  it('emitOnce: one event per occurrence mark among racing watchers; a cleared mark lets the next one through', async () => {
    prefix = freshPrefix('nt');
    rt = runtime();
    const mark = rt.store.keys.notifyMark('x');
    const r = await Promise.all(Array.from({ length: 8 }, (_, i) => emitOnce(rt, mark, event(`evt.m${i}`))));
    expect(r.filter(Boolean)).toHaveLength(1);
  });

  it('the watch reports a paused lane once per pause and a stalled batch once per stall', async () => {
    prefix = freshPrefix('nt');
    rt = runtime({ STALL_AFTER: '200ms' });
    await rt.store.createRecords('stuck', [{ jobId: 'a'.repeat(24), input: 'https://example.com/a.png', model: 'topaz/image-upscale', factor: '2' }]);
    await pause(rt);
    const watches = [new BatchWatch(rt, rt.log, { tickMs: 20, watchEveryMs: 20 }), new BatchWatch(rt, rt.log, { tickMs: 20, watchEveryMs: 20 })];
    watches.forEach((w) => w.start());
    try {
      await waitFor(async () => {
        const ids = await rt.redis.zrevrange(rt.store.keys.notifyRecent, 0, -1);
        return ids.some((i) => i.startsWith('evt.batch.paused.submit.manual')) && ids.some((i) => i.startsWith('evt.batch.stalled.stuck')) ? ids : null;
      }, { what: 'paused and stalled events' });
      await new Promise((r) => setTimeout(r, 200)); // more ticks of both watches must add nothing
      const ids = await rt.redis.zrevrange(rt.store.keys.notifyRecent, 0, -1);
      expect(ids.filter((i) => i.includes('batch.paused'))).toHaveLength(1);
      expect(ids.filter((i) => i.includes('batch.stalled'))).toHaveLength(1);
      const paused = await getEvent(rt, ids.find((i) => i.includes('batch.paused')) as string);
      expect(paused?.event.data).toMatchObject({ lane: 'submit', reason: { code: 'manual' }, batches: ['stuck'] });
      expect(paused?.event.text).toMatch(/upscale resume/);
    } finally {
      await Promise.all(watches.map((w) => w.stop()));
    }
    expect(batchStalled({ batchId: 'b', since: 0, stallAfterMs: 1, remaining: 1, counts: {} }, 60_000).id).toBe('evt.batch.stalled.b.0');
  });
});
