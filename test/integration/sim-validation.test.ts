/**
 * What the simulator refuses, and how: 401 for keys, Cloudflare's 403 without User-Agent, 422 with a precise
 * message per model and per input image, the 500 quirk for a missing `input`, 402 for credits, and
 * "recordInfo is null" for an unknown task. A refused call creates nothing.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import {
  hugeImageUrl,
  notAnImageUrl,
  recraftBody,
  sampleImageUrl,
  simCall,
  topazBody,
} from '../helpers/images.js';
import { closedPort } from '../helpers/ports.js';

const CREATE = '/api/v1/jobs/createTask';


describe('simulator refusals', () => {
  let sim: Simulator;
  let img: string;
  let closed: number;
  beforeAll(async () => {
    closed = await closedPort();
    sim = await startSimulator({
      dialect: 'docs',
      apiKeys: ['k'],
      timeScale: 100,
      createLimit: { max: 1000, durationMs: 10_000 },
    });
    img = sampleImageUrl(sim.url, 'val', 64, 48, 'png');
  });
  afterAll(() => sim.stop());

  it('answers 401 without a key or with a wrong one, on every API endpoint', async () => {
    const calls: [string, unknown][] = [
      [CREATE, topazBody(img)],
      ['/api/v1/jobs/recordInfo?taskId=x', undefined],
      ['/api/v1/chat/credit', undefined],
      ['/api/v1/common/download-url', { url: 'x' }],
      ['/api/file-base64-upload', { base64Data: 'aGk=' }],
    ];
    for (const [path, body] of calls) {
      for (const key of [null, 'wrong']) {
        const a = await simCall(sim.url, path, { key, body });
        expect(a.status, path).toBe(200);
        expect(a.json.code, path).toBe(401);
        expect(a.json.data).toBeNull();
      }
    }
    expect(sim.stats().rejected401).toBe(10);
    const upload = await simCall(sim.url, '/api/file-url-upload', { key: 'wrong', body: { fileUrl: img } });
    expect(upload.json).toMatchObject({ success: false, code: 401 });
  });

  it('answers a request without User-Agent like Cloudflare: HTTP 403, plain text "error code: 1010"', async () => {
    const { status, type, text } = await new Promise<{ status: number; type: string; text: string }>(
      (resolve, reject) => {
        const req = request(
          `${sim.url}/api/v1/chat/credit`,
          { headers: { authorization: 'Bearer k' } },
          (res) => {
            let text = '';
            res.on('data', (d: Buffer) => (text += d.toString()));
            res.on('end', () =>
              resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), text }),
            );
          },
        );
        req.on('error', reject);
        req.end();
      },
    );
    expect(status).toBe(403);
    expect(type).toMatch(/^text\/plain/);
    expect(text).toBe('error code: 1010');
  });

  const cases: [string, () => unknown, RegExp][] = [
    [
      'a factor outside 1/2/4/8',
      () => topazBody(img, '3'),
      /upscale_factor "3" is not one of "1", "2", "4", "8"/,
    ],
    ['a number factor', () => topazBody(img, 2), /upscale_factor must be a string.*got number 2/],
    [
      'recraft with a factor',
      () => ({ model: 'recraft/crisp-upscale', input: { image: img, upscale_factor: '2' } }),
      /takes no upscale_factor/,
    ],
    [
      'recraft with image_url',
      () => ({ model: 'recraft/crisp-upscale', input: { image_url: img } }),
      /takes input\.image, not input\.image_url/,
    ],
    [
      'topaz with image',
      () => ({ model: 'topaz/image-upscale', input: { image: img } }),
      /takes input\.image_url, not input\.image/,
    ],
    [
      'an unknown model',
      () => ({ model: 'topaz/video-upscale', input: { image_url: img } }),
      /model "topaz\/video-upscale" is not supported/,
    ],
    ['no model', () => ({ input: { image_url: img } }), /model is required/],
    ['no image URL', () => ({ model: 'topaz/image-upscale', input: {} }), /input\.image_url is required/],
    ['a non-http image URL', () => topazBody('ftp://example.com/a.png'), /must be an http\(s\) URL/],
    [
      'a bad callBackUrl',
      () => topazBody(img, '2', { callBackUrl: 'not a url' }),
      /callBackUrl must be an http\(s\) URL/,
    ],
    [
      'an unreachable URL',
      () => topazBody(`http://127.0.0.1:${closed}/a.png`),
      /could not be fetched \(ECONNREFUSED\)/,
    ],
    ['a URL answering 404', () => topazBody(`${sim.url}/sim/images/missing.png`), /answered HTTP 404/],
    ['HTML served as image/jpeg', () => recraftBody(notAnImageUrl(sim.url)), /not an image/],
    ['a GIF', () => topazBody(sampleImageUrl(sim.url, 'gif', 32, 32, 'gif')), /format gif is not supported/],
    ['a file over 10 MB', () => topazBody(hugeImageUrl(sim.url), '1'), /over the 10\.0 MB limit/],
    [
      'an output over 20,000 px',
      () => topazBody(sampleImageUrl(sim.url, 'wide', 2600, 100, 'jpg'), '8'),
      /20800 px .* over the 20000 px limit/,
    ],
    [
      'recraft counted as ×2',
      () => recraftBody(sampleImageUrl(sim.url, 'wide', 10_001, 10, 'jpg')),
      /20002 px/,
    ],
  ];
  for (const [what, body, msg] of cases) {
    it(`answers 422 to ${what}, with a precise message, and creates nothing`, async () => {
      const before = sim.stats();
      const a = await simCall(sim.url, CREATE, { body: body() });
      expect(a.status).toBe(200);
      expect(a.json).toMatchObject({ code: 422, data: null });
      expect(a.json.msg).toMatch(msg);
      const after = sim.stats();
      expect(after.createAccepted).toBe(before.createAccepted);
      expect(after.rejected422).toBe(before.rejected422 + 1);
      expect(after.credits).toBe(before.credits);
    });
  }

  it('answers 500 "This field is required" when input is missing altogether (the live quirk)', async () => {
    const a = await simCall(sim.url, CREATE, { body: { model: 'topaz/image-upscale' } });
    expect(a.json).toMatchObject({ code: 500, msg: 'This field is required', data: null });
  });

  it('answers 422 to a body that is not JSON', async () => {
    const a = await simCall(sim.url, CREATE, {
      rawBody: '{"model":',
      headers: { 'content-type': 'application/json' },
    });
    expect(a.json.code).toBe(422);
  });

  it('answers an unknown taskId with code 422 "recordInfo is null" and data null', async () => {
    const a = await simCall(sim.url, '/api/v1/jobs/recordInfo?taskId=0123456789abcdef');
    expect(a.status).toBe(200);
    expect(a.json).toEqual({ code: 422, msg: 'recordInfo is null', data: null });
  });
});

describe('credits', () => {
  let sim: Simulator | undefined;
  afterAll(() => sim?.stop());

  it('answers 402 once the balance is below the price, creates nothing, and accepts again after setCredits', async () => {
    sim = await startSimulator({ apiKeys: ['k'], timeScale: 100, credits: 15, dialect: 'docs' });
    const small = sampleImageUrl(sim.url, 'credit', 64, 48); // topaz ×2 → 128 px: 10 credits
    expect((await simCall(sim.url, CREATE, { body: topazBody(small) })).json.code).toBe(200);
    const refused = await simCall(sim.url, CREATE, { body: topazBody(small) });
    expect(refused.json).toMatchObject({ code: 402, data: null });
    expect(refused.json.msg).toMatch(/10 credits and 5 remain/);
    expect((await simCall(sim.url, '/api/v1/chat/credit')).json).toEqual({
      code: 200,
      msg: 'success',
      data: 5,
    });
    // recraft costs 0.5: still possible
    expect((await simCall(sim.url, CREATE, { body: recraftBody(small) })).json.code).toBe(200);
    expect(sim.stats()).toMatchObject({ createAccepted: 2, rejected402: 1, credits: 4.5 });
    sim.setCredits(100);
    expect((await simCall(sim.url, CREATE, { body: topazBody(small) })).json.code).toBe(200);
    expect(sim.stats().credits).toBe(90);
  });

  it('prices topaz by output size (10 / 20 / 40)', async () => {
    await sim?.stop();
    sim = await startSimulator({ apiKeys: ['k'], timeScale: 100, credits: 1000, dialect: 'docs' });
    const at = (w: number) => topazBody(sampleImageUrl(sim!.url, 'price', w, 10, 'jpg'), '4');
    for (const [w, price] of [
      [512, 10],
      [1000, 20],
      [1100, 40],
    ] as const) {
      const before = sim.stats().credits;
      expect((await simCall(sim.url, CREATE, { body: at(w) })).json.code).toBe(200);
      expect(before - sim.stats().credits).toBe(price);
    }
  });

  it('answers errors with their HTTP status under errorStyle "http"', async () => {
    await sim?.stop();
    sim = await startSimulator({ apiKeys: ['k'], errorStyle: 'http', dialect: 'docs' });
    const a = await simCall(sim.url, CREATE, { body: topazBody('x') });
    expect(a.status).toBe(422);
    expect(a.json.code).toBe(422);
    expect((await simCall(sim.url, '/api/v1/chat/credit', { key: 'bad' })).status).toBe(401);
  });
});
