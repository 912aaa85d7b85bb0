/** Answers that are not usable envelopes, and exchanges that get no answer at all. */
import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  KieBadResponseError,
  KieClient,
  KieNetworkError,
  KieTimeoutError,
  TOPAZ,
} from '../../src/kie/index.js';
import {
  closedPort,
  KEY,
  ok,
  sendJson,
  sendText,
  startTestServer,
  type TestServer,
  failure,
} from './kie-test-server.js';

let server: TestServer;
let client: KieClient;

beforeAll(async () => {
  server = await startTestServer();
  client = new KieClient({ apiKey: KEY, baseUrl: server.url, uploadBaseUrl: server.url, timeoutMs: 2000 });
});
afterAll(async () => {
  client.close();
  await server.close();
});

const create = (c: KieClient = client) =>
  c.createTask({ model: TOPAZ, input: { image_url: 'https://x/a.png', upscale_factor: '2' } });

describe('bad answers are KieBadResponseError, never a crash', () => {
  const cases: [string, (res: ServerResponse) => void, RegExp][] = [
    ['malformed JSON', (res) => sendText(res, 200, '{code: 200, data: }', 'application/json'), /not JSON/],
    [
      'an HTML error page under 200',
      (res) => sendText(res, 200, '<!doctype html><html><title>Oops</title></html>', 'text/html'),
      /HTML page.*Oops/,
    ],
    [
      'truncated JSON',
      (res) => sendText(res, 200, '{"code":200,"msg":"success","data":{"taskId":"ab', 'application/json'),
      /not JSON/,
    ],
    ['an empty body', (res) => sendText(res, 200, ''), /empty/],
    ['a JSON array', (res) => sendJson(res, 200, [1, 2]), /not a JSON object/],
    ['an object without code', (res) => sendJson(res, 200, { data: { taskId: 'x' } }), /no code/],
    [
      'code "abc"',
      (res) => sendJson(res, 200, { code: 'abc', msg: 'success', data: { taskId: 'x' } }),
      /code is not a number/,
    ],
    [
      'code 200.5',
      (res) => sendJson(res, 200, { code: 200.5, data: { taskId: 'x' } }),
      /code is not a number/,
    ],
    ['data a number', (res) => sendJson(res, 200, ok(42)), /data is a number/],
    ['data null', (res) => sendJson(res, 200, ok(null)), /data is null/],
    ['no taskId', (res) => sendJson(res, 200, ok({ id: 'x' })), /no taskId/],
    ['an empty taskId', (res) => sendJson(res, 200, ok({ taskId: '  ' })), /no taskId/],
  ];
  it.each(cases)('createTask answered with %s', async (_label, answer, reason) => {
    server.handle((_req, res) => answer(res));
    const e = await failure(create());
    expect(e).toBeInstanceOf(KieBadResponseError);
    expect(e).toMatchObject({ httpStatus: 200, endpoint: 'POST /api/v1/jobs/createTask' });
    expect(e.kieMessage).toMatch(reason);
    expect(server.requests).toHaveLength(1);
  });

  it('accepts a numeric string code and a numeric taskId', async () => {
    server.handle((_req, res) =>
      sendJson(res, 200, { code: '200', msg: 'success', data: { taskId: 12345 } }),
    );
    await expect(create()).resolves.toEqual({ taskId: '12345' });
  });

  it('credits that are not a number, a download URL that is missing, a task record that is not an object', async () => {
    server.handle((_req, res) => sendJson(res, 200, ok({ credits: 1 })));
    expect(await failure(client.getCredits())).toMatchObject({
      name: 'KieBadResponseError',
      kieMessage: expect.stringMatching(/not a number/),
    });
    server.handle((_req, res) => sendJson(res, 200, ok(null)));
    expect(await failure(client.getDownloadUrl('https://x/r.png'))).toBeInstanceOf(KieBadResponseError);
    server.handle((_req, res) => sendJson(res, 200, ok('t')));
    expect((await failure(client.getTask('t'))).kieMessage).toMatch(/data is a string/);
    // An unknown state word is not a bad answer: the task is still running (kept raw for the record).
    server.handle((_req, res) => sendJson(res, 200, ok({ taskId: 't', state: 'exploded' })));
    expect(await client.getTask('t')).toMatchObject({ state: 'unknown', rawState: 'exploded' });
  });

  it('a body over 10 MB is refused without reading it all', async () => {
    const big = `{"code":200,"msg":"${'x'.repeat(11 * 1024 * 1024)}","data":1}`;
    server.handle((_req, res) => sendText(res, 200, big, 'application/json'));
    const e = await failure(client.getCredits());
    expect(e).toBeInstanceOf(KieBadResponseError);
    expect(e.kieMessage).toMatch(/too large/);
  });

  it('a smaller maxResponseBytes applies too', async () => {
    const small = new KieClient({
      apiKey: KEY,
      baseUrl: server.url,
      uploadBaseUrl: server.url,
      timeoutMs: 2000,
      maxResponseBytes: 64,
    });
    server.handle((_req, res) => sendJson(res, 200, ok('y'.repeat(100))));
    expect(await failure(small.getCredits())).toBeInstanceOf(KieBadResponseError);
    small.close();
  });

  it('an answer cut off mid-body is a bad response (the request did arrive)', async () => {
    server.handle((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': 1000 });
      res.write('{"code":200,"data":{"taskId"');
      setTimeout(() => res.socket?.destroy(), 20);
    });
    const e = await failure(create());
    expect(e).toBeInstanceOf(KieBadResponseError);
    expect(server.requests).toHaveLength(1);
  });
});

describe('no answer', () => {
  it('a server that never answers is a KieTimeoutError after timeoutMs', async () => {
    const quick = new KieClient({
      apiKey: KEY,
      baseUrl: server.url,
      uploadBaseUrl: server.url,
      timeoutMs: 200,
    });
    server.handle(() => undefined);
    const started = Date.now();
    const e = await failure(create(quick));
    quick.close();
    expect(e).toBeInstanceOf(KieTimeoutError);
    expect(e).toMatchObject({ code: null, httpStatus: null, endpoint: 'POST /api/v1/jobs/createTask' });
    expect(Date.now() - started).toBeLessThan(1500);
    expect(server.requests).toHaveLength(1);
  });

  it('an answer that trickles in past the deadline is a KieTimeoutError (whole-exchange deadline)', async () => {
    const quick = new KieClient({
      apiKey: KEY,
      baseUrl: server.url,
      uploadBaseUrl: server.url,
      timeoutMs: 300,
    });
    let timer: NodeJS.Timeout | undefined;
    server.handle((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(' ');
      timer = setInterval(() => res.write(' '), 50);
      res.on('close', () => clearInterval(timer));
    });
    const started = Date.now();
    const e = await failure(quick.getCredits());
    clearInterval(timer);
    quick.close();
    expect(e).toBeInstanceOf(KieTimeoutError);
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('connection refused is a KieNetworkError that was not sent', async () => {
    const refused = new KieClient({
      apiKey: KEY,
      baseUrl: `http://127.0.0.1:${await closedPort()}`,
      uploadBaseUrl: server.url,
      timeoutMs: 2000,
    });
    const e = await failure(create(refused));
    refused.close();
    expect(e).toBeInstanceOf(KieNetworkError);
    expect((e as KieNetworkError).maybeSent).toBe(false);
    expect(e.kieMessage).toMatch(/ECONNREFUSED/);
  });

  it('a connection reset after the request was sent is a KieNetworkError that may have been sent, not retried', async () => {
    server.handle((_req, res) => void res.socket?.destroy());
    const e = await failure(create());
    expect(e).toBeInstanceOf(KieNetworkError);
    expect((e as KieNetworkError).maybeSent).toBe(true);
    expect(server.requests).toHaveLength(1);
  });
});
