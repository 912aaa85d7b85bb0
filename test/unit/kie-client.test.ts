import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  KieError} from '../../src/kie/index.js';
import {
  isKieError,
  KieAuthError,
  KieClient,
  type KieErrorName,
  KieUnknownCodeError,
  KieUnknownTaskError,
  MODELS,
  RECRAFT,
  TOPAZ,
} from '../../src/kie/index.js';
import {
  everythingShown,
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
  client = new KieClient({
    apiKey: KEY,
    baseUrl: `${server.url}/`,
    uploadBaseUrl: 'http://127.0.0.1:9',
    timeoutMs: 2000,
  });
});
afterAll(async () => {
  client.close();
  await server.close();
});

describe('successful calls', () => {
  it('createTask sends the Bearer key, an explicit User-Agent and the topaz body with a string factor', async () => {
    server.handle((_req, res) => sendJson(res, 200, ok({ taskId: 'task-1' })));
    const input = MODELS[TOPAZ].buildInput('https://img.example/a.png', '4');
    await expect(
      client.createTask({ model: TOPAZ, input, callBackUrl: 'https://cb.example/k?t=x' }),
    ).resolves.toEqual({
      taskId: 'task-1',
    });
    expect(server.requests).toHaveLength(1);
    const req = server.requests[0]!;
    expect(req.method).toBe('POST');
    expect(req.path).toBe('/api/v1/jobs/createTask');
    expect(req.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(req.headers['user-agent']).toMatch(/^kie-upscale-queue\/\d+\.\d+\.\d+\S* \(\+node\)$/);
    expect(req.headers['content-type']).toMatch(/^application\/json/);
    expect(req.json()).toEqual({
      model: TOPAZ,
      callBackUrl: 'https://cb.example/k?t=x',
      input: { image_url: 'https://img.example/a.png', upscale_factor: '4' },
    });
    expect(typeof req.json().input.upscale_factor).toBe('string');
  });

  it('createTask omits callBackUrl when not given, sends recraft`s `image` field and accepts data.task_id', async () => {
    server.handle((_req, res) =>
      sendJson(res, 200, { code: 200, message: 'ok', data: { task_id: 'task-2' } }),
    );
    const input = MODELS[RECRAFT].buildInput('https://img.example/b.webp', null);
    await expect(client.createTask({ model: RECRAFT, input })).resolves.toEqual({ taskId: 'task-2' });
    expect(server.requests[0]!.json()).toEqual({
      model: RECRAFT,
      input: { image: 'https://img.example/b.webp' },
    });
  });

  it('getTask queries recordInfo with the taskId', async () => {
    server.handle((_req, res) =>
      sendJson(res, 200, ok({ taskId: 'id/1 2', model: TOPAZ, state: 'generating', param: '{"model":"x"}' })),
    );
    const info = await client.getTask('id/1 2');
    expect(info).toMatchObject({
      taskId: 'id/1 2',
      model: TOPAZ,
      state: 'generating',
      param: { model: 'x' },
      resultUrls: [],
    });
    const req = server.requests[0]!;
    expect(req.method).toBe('GET');
    expect(req.path).toBe('/api/v1/jobs/recordInfo');
    expect(req.query.get('taskId')).toBe('id/1 2');
    expect(req.headers.authorization).toBe(`Bearer ${KEY}`);
  });

  it('getCredits reads a number (and a numeric string)', async () => {
    server.handle((_req, res) => sendJson(res, 200, ok(123.5)));
    await expect(client.getCredits()).resolves.toBe(123.5);
    expect(server.requests[0]).toMatchObject({ method: 'GET', path: '/api/v1/chat/credit' });
    server.handle((_req, res) => sendJson(res, 200, ok('77')));
    await expect(client.getCredits()).resolves.toBe(77);
  });

  it('getDownloadUrl posts { url } and returns the link', async () => {
    server.handle((_req, res) => sendJson(res, 200, ok('https://dl.example/x?sig=1')));
    await expect(client.getDownloadUrl('https://tempfile.example/r.png')).resolves.toBe(
      'https://dl.example/x?sig=1',
    );
    expect(server.requests[0]).toMatchObject({ method: 'POST', path: '/api/v1/common/download-url' });
    expect(server.requests[0]!.json()).toEqual({ url: 'https://tempfile.example/r.png' });
  });

  it('sends a custom User-Agent and reuses one keep-alive socket for many calls', async () => {
    const custom = new KieClient({
      apiKey: KEY,
      baseUrl: server.url,
      uploadBaseUrl: server.url,
      timeoutMs: 2000,
      userAgent: 'ua-test/1',
    });
    server.handle((_req, res) => sendJson(res, 200, ok(1)));
    for (let i = 0; i < 20; i++) await custom.getCredits();
    custom.close();
    expect(server.requests).toHaveLength(20);
    expect(new Set(server.requests.map((r) => r.headers['user-agent']))).toEqual(new Set(['ua-test/1']));
    expect(new Set(server.requests.map((r) => r.remotePort)).size).toBe(1);
  });

  it('fromConfig takes the key, bases and timeout from the config', async () => {
    server.handle((_req, res) => sendJson(res, 200, ok(5)));
    const { loadConfig } = await import('../../src/config/index.js');
    const config = loadConfig({}, { KIE_API_KEY: KEY, KIE_BASE_URL: server.url, KIE_REQUEST_TIMEOUT: '2s' });
    const c = KieClient.fromConfig(config);
    await expect(c.getCredits()).resolves.toBe(5);
    c.close();
    expect(server.requests[0]!.headers.authorization).toBe(`Bearer ${KEY}`);
  });
});

const CODES: [number, string, KieErrorName][] = [
  [401, 'invalid key', 'KieAuthError'],
  [402, 'insufficient credits', 'KieCreditsError'],
  [404, 'not found', 'KieNotFoundError'],
  [422, 'upscale_factor is invalid', 'KieValidationError'],
  [422, 'recordInfo is null', 'KieUnknownTaskError'],
  [429, 'rate limited', 'KieRateLimitError'],
  [433, 'The current number of points used by apiKey has exceeded the daily limit', 'KieDailyLimitError'],
  [408, 'something new', 'KieUnknownCodeError'],
  [455, 'maintenance', 'KieMaintenanceError'],
  [500, 'This field is required', 'KieServerError'],
  [501, 'generation failed', 'KieGenerationFailedError'],
  [505, 'feature disabled', 'KieFeatureDisabledError'],
];

describe('error codes', () => {
  it.each(CODES)('HTTP 200 with envelope code %i (%s) → %s, sent once', async (code, msg, name) => {
    server.handle((_req, res) => sendJson(res, 200, { code, msg, data: null }));
    const e = await failure(client.getTask('t-1'));
    expect(e.name).toBe(name);
    expect(isKieError(e, name)).toBe(true);
    expect(e).toMatchObject({
      code,
      httpStatus: 200,
      kieMessage: msg,
      endpoint: 'GET /api/v1/jobs/recordInfo',
    });
    expect(server.requests).toHaveLength(1);
  });

  it.each(CODES)('HTTP status %i without an envelope (%s) → %s', async (code, msg, name) => {
    server.handle((_req, res) => sendText(res, code, msg));
    const e = await failure(
      client.createTask({ model: TOPAZ, input: { image_url: 'u', upscale_factor: '2' } }),
    );
    expect(e.name).toBe(name);
    expect(e).toMatchObject({ code, httpStatus: code, endpoint: 'POST /api/v1/jobs/createTask' });
    expect(server.requests).toHaveLength(1);
  });

  it('accepts `message` instead of `msg`', async () => {
    server.handle((_req, res) => sendJson(res, 200, { code: 402, message: 'top up please', data: null }));
    const e = await failure(client.getCredits());
    expect(e).toMatchObject({ name: 'KieCreditsError', kieMessage: 'top up please' });
  });

  it('HTTP 429 with an HTML page, HTTP 429 with an envelope and HTTP 200 code 429 are all rate limits', async () => {
    server.handle((_req, res) =>
      sendText(res, 429, '<html><body><h1>Too Many Requests</h1></body></html>', 'text/html'),
    );
    expect(await failure(client.getCredits())).toMatchObject({
      name: 'KieRateLimitError',
      code: 429,
      httpStatus: 429,
    });
    server.handle((_req, res) => sendJson(res, 429, { code: 429, msg: 'slow down', data: null }));
    expect(await failure(client.getCredits())).toMatchObject({
      name: 'KieRateLimitError',
      kieMessage: 'slow down',
    });
    server.handle((_req, res) => sendJson(res, 200, { code: 429, msg: 'slow down', data: null }));
    expect(await failure(client.getCredits())).toMatchObject({ name: 'KieRateLimitError', httpStatus: 200 });
  });

  it('HTTP 503 without an envelope is an unknown code 503; a Cloudflare 403 too', async () => {
    server.handle((_req, res) => sendText(res, 503, ''));
    expect(await failure(client.getCredits())).toMatchObject({
      name: 'KieUnknownCodeError',
      code: 503,
      kieMessage: 'HTTP 503',
    });
    server.handle((_req, res) => sendText(res, 403, 'error code: 1010'));
    const e = await failure(client.getCredits());
    expect(e).toBeInstanceOf(KieUnknownCodeError);
    expect(e.kieMessage).toBe('error code: 1010');
  });

  it('the envelope code wins over the HTTP status', async () => {
    server.handle((_req, res) => sendJson(res, 500, { code: 455, msg: 'maintenance', data: null }));
    expect(await failure(client.getCredits())).toMatchObject({
      name: 'KieMaintenanceError',
      code: 455,
      httpStatus: 500,
    });
  });

  it('an unknown task is a KieUnknownTaskError and a KieValidationError', async () => {
    server.handle((_req, res) => sendJson(res, 200, { code: 422, msg: 'recordInfo is null', data: null }));
    const e = await failure(client.getTask('nope'));
    expect(e).toBeInstanceOf(KieUnknownTaskError);
    expect(isKieError(e, 'KieValidationError')).toBe(true);
    expect(isKieError(e, 'KieRateLimitError')).toBe(false);
  });

  it('without a key, fails with KieAuthError and sends nothing', async () => {
    server.handle((_req, res) => sendJson(res, 200, ok(1)));
    const keyless = new KieClient({
      apiKey: undefined,
      baseUrl: server.url,
      uploadBaseUrl: server.url,
      timeoutMs: 2000,
    });
    const e = await failure(keyless.getCredits());
    keyless.close();
    expect(e).toBeInstanceOf(KieAuthError);
    expect(server.requests).toHaveLength(0);
  });

  it('refuses an empty taskId, an unknown model and non-string input without a request', async () => {
    expect(await failure(client.getTask('  '))).toMatchObject({ name: 'KieValidationError', code: null });
    const model = 'nope/model' as typeof TOPAZ;
    expect(await failure(client.createTask({ model, input: {} }))).toMatchObject({
      name: 'KieValidationError',
    });
    const input = { image_url: 'u', upscale_factor: 2 } as unknown as Record<string, string>;
    expect(await failure(client.createTask({ model: TOPAZ, input }))).toMatchObject({
      name: 'KieValidationError',
    });
    expect(server.requests).toHaveLength(0);
  });
});

describe('the API key never shows', () => {
  it('is redacted from kie messages, toJSON and inspect, for every kind of failure', async () => {
    const errors: KieError[] = [];
    server.handle((_req, res) =>
      sendJson(res, 200, { code: 401, msg: `key ${KEY} is not valid (Bearer ${KEY})`, data: null }),
    );
    errors.push(await failure(client.getCredits()));
    server.handle((_req, res) => sendText(res, 200, `<html>${KEY}</html>`, 'text/html'));
    errors.push(await failure(client.getCredits()));
    server.handle((_req, res) => sendText(res, 401, `Authorization: Bearer ${KEY}`));
    errors.push(await failure(client.getCredits()));
    server.handle((req) => req.body && undefined); // never answers
    const slow = new KieClient({
      apiKey: KEY,
      baseUrl: server.url,
      uploadBaseUrl: server.url,
      timeoutMs: 150,
    });
    errors.push(await failure(slow.getCredits()));
    slow.close();
    server.handle((_req, res) => void res.socket?.destroy());
    errors.push(await failure(client.getCredits()));
    for (const e of errors) {
      const shown = await everythingShown(e);
      expect(shown).not.toContain(KEY);
      expect(shown).not.toContain('S3CRET');
    }
    expect(errors[0]!.kieMessage).toContain('[redacted]');
  });
});
