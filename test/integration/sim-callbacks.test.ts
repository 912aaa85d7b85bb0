/**
 * Callbacks reach a real local HTTP server in both formats (success code 200, failure code 501), signed as
 * kie.ai signs them (checked here with an independent HMAC computation), and are dropped, duplicated or lost
 * as the faults say, never retried.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startSimulator, type SimOptions, type Simulator } from '../../src/sim/index.js';
import { recraftBody, sampleImageUrl, simCall, topazBody } from '../helpers/images.js';
import { waitFor } from '../helpers/redis.js';

const HMAC_KEY = 'whsec-test-0123456789';
const FAST: NonNullable<SimOptions['latency']> = {
  'topaz/image-upscale': { medianMs: 2000, p95Ms: 4000 },
  'recraft/crisp-upscale': { medianMs: 2000, p95Ms: 4000 },
};

interface Received {
  headers: IncomingHttpHeaders;
  body: { code: number; msg: string; data: Record<string, unknown> };
  path: string;
}

let receiver: Server;
let received: Received[];
let receiverUrl: string;
let answerStatus: number;
let sim: Simulator | undefined;

beforeEach(async () => {
  received = [];
  answerStatus = 200;
  receiver = createServer((req, res) => {
    let text = '';
    req.on('data', (d: Buffer) => (text += d.toString()));
    req.on('end', () => {
      received.push({
        headers: req.headers,
        body: JSON.parse(text) as Received['body'],
        path: req.url ?? '',
      });
      res.writeHead(answerStatus, { 'content-type': 'application/json' }).end('{"code":200,"msg":"success"}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
});

afterEach(async () => {
  await sim?.stop();
  sim = undefined;
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
});

async function start(o: Partial<SimOptions> = {}): Promise<Simulator> {
  sim = await startSimulator({
    dialect: 'docs',
    apiKeys: ['k'],
    timeScale: 100,
    latency: FAST,
    webhookHmacKey: HMAC_KEY,
    ...o,
  });
  return sim;
}

async function create(s: Simulator, body: unknown): Promise<string> {
  const a = await simCall(s.url, '/api/v1/jobs/createTask', { body });
  expect(a.json.code).toBe(200);
  return a.json.data.taskId as string;
}

/** The check a receiver makes, written here independently of the simulator's signing code. */
function signatureValid(headers: IncomingHttpHeaders, taskId: string): boolean {
  const ts = String(headers['x-webhook-timestamp']);
  const sig = Buffer.from(String(headers['x-webhook-signature']), 'base64');
  const expected = createHmac('sha256', HMAC_KEY).update(`${taskId}.${ts}`).digest();
  return sig.length === expected.length && timingSafeEqual(sig, expected);
}

const ended = (s: Simulator) => s.tasks().every((t) => t.state === 'success' || t.state === 'fail');

describe('callbacks', () => {
  it('posts the success format, signed over taskId.timestamp', async () => {
    const s = await start();
    const taskId = await create(
      s,
      topazBody(sampleImageUrl(s.url, 'cb'), '2', { callBackUrl: `${receiverUrl}/hook?t=abc` }),
    );
    await waitFor(() => received.length === 1, { what: 'callback' });
    const [cb] = received;
    expect(cb!.path).toBe('/hook?t=abc');
    expect(cb!.headers['content-type']).toMatch(/^application\/json/);
    expect(cb!.body.code).toBe(200);
    expect(cb!.body.data).toMatchObject({
      taskId,
      model: 'topaz/image-upscale',
      state: 'success',
      creditsConsumed: 10,
    });
    const result = JSON.parse(cb!.body.data.resultJson as string) as { resultUrls: string[] };
    expect(result.resultUrls).toEqual(s.tasks()[0]!.resultUrls);
    expect(JSON.parse(cb!.body.data.param as string)).toMatchObject({
      callBackUrl: `${receiverUrl}/hook?t=abc`,
    });
    expect(signatureValid(cb!.headers, taskId)).toBe(true);
    expect(signatureValid(cb!.headers, 'another-task')).toBe(false);
    expect(Math.abs(Number(cb!.headers['x-webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(10);
    expect(s.stats()).toMatchObject({ callbacksSent: 1, callbacksFailed: 0 });
    expect(s.tasks()[0]!.callbacksSent).toBe(1);
  });

  it('posts the failure format: code 501, state fail, failCode, creditsConsumed 0', async () => {
    const s = await start({ failRate: 1 });
    const taskId = await create(
      s,
      recraftBody(sampleImageUrl(s.url, 'cbfail'), { callBackUrl: `${receiverUrl}/hook` }),
    );
    await waitFor(() => received.length === 1, { what: 'callback' });
    const [cb] = received;
    expect(cb!.body.code).toBe(501);
    expect(cb!.body.data).toMatchObject({
      taskId,
      state: 'fail',
      failCode: '500',
      creditsConsumed: 0,
      resultJson: '',
    });
    expect(typeof cb!.body.data.failMsg).toBe('string');
    expect(signatureValid(cb!.headers, taskId)).toBe(true);
  });

  it('sends unsigned callbacks without a webhook HMAC key', async () => {
    const s = await start({ webhookHmacKey: '' });
    await create(
      s,
      topazBody(sampleImageUrl(s.url, 'unsigned'), '1', { callBackUrl: `${receiverUrl}/hook` }),
    );
    await waitFor(() => received.length === 1, { what: 'callback' });
    expect(received[0]!.headers['x-webhook-signature']).toBeUndefined();
    expect(received[0]!.headers['x-webhook-timestamp']).toBeUndefined();
  });

  it('drop rate 1: no callback at all', async () => {
    const s = await start({ faults: { callbackDropRate: 1 } });
    await create(s, topazBody(sampleImageUrl(s.url, 'drop'), '1', { callBackUrl: `${receiverUrl}/hook` }));
    await waitFor(() => ended(s) && s.stats().callbacksDropped === 1, { what: 'task end' });
    expect(received).toHaveLength(0);
    expect(s.stats()).toMatchObject({ callbacksSent: 0, callbacksDropped: 1 });
  });

  it('duplicate rate 1: the same callback twice', async () => {
    const s = await start({ faults: { callbackDuplicateRate: 1 } });
    const taskId = await create(
      s,
      topazBody(sampleImageUrl(s.url, 'dup'), '1', { callBackUrl: `${receiverUrl}/hook` }),
    );
    await waitFor(() => received.length === 2, { what: 'two callbacks' });
    expect(received.map((r) => r.body.data.taskId)).toEqual([taskId, taskId]);
    expect(received[1]!.body).toEqual(received[0]!.body);
    expect(s.stats()).toMatchObject({ callbacksSent: 2, callbacksDuplicated: 1 });
    expect(s.tasks()[0]!.callbacksSent).toBe(2);
  });

  it('delays callbacks by callbackDelayMs (scaled)', async () => {
    const s = await start({ faults: { callbackDelayMs: 50_000 } }); // 500 ms at ×100
    await create(s, topazBody(sampleImageUrl(s.url, 'late'), '1', { callBackUrl: `${receiverUrl}/hook` }));
    await waitFor(() => ended(s), { what: 'task end' });
    const endedAt = s.tasks()[0]!.completedAt!;
    await waitFor(() => received.length === 1, { what: 'late callback' });
    expect(Date.now() - endedAt).toBeGreaterThanOrEqual(450);
  });

  it('counts a delivery the receiver refuses as failed, and does not retry it', async () => {
    answerStatus = 500;
    const s = await start();
    await create(s, topazBody(sampleImageUrl(s.url, 'refused'), '1', { callBackUrl: `${receiverUrl}/hook` }));
    await waitFor(() => s.stats().callbacksFailed === 1, { what: 'failed delivery' });
    expect(received).toHaveLength(1);
    expect(s.stats()).toMatchObject({ callbacksSent: 1, callbacksFailed: 1 });
  });

  it('counts an unreachable callBackUrl as failed', async () => {
    const s = await start();
    const closed = receiverUrl;
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
    receiver = createServer(); // afterEach closes this one
    await create(s, topazBody(sampleImageUrl(s.url, 'nowhere'), '1', { callBackUrl: `${closed}/hook` }));
    await waitFor(() => s.stats().callbacksFailed === 1, { what: 'failed delivery' });
  });
});
