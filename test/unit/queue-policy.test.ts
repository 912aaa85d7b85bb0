import { describe, expect, it } from 'vitest';
import { kieErrorFrom } from '../../src/kie/errors.js';
import { callbackToken, callbackUrl, checkCallbackToken } from '../../src/queue/callback-token.js';
import { imageJobId, parseSubmitJobId, pollJobId, submitJobId, checkBatchId, newBatchId } from '../../src/queue/identity.js';
import { limiterFor } from '../../src/queue/limits.js';
import { outcomeFor, retryDelay } from '../../src/queue/outcome.js';

describe('limiterFor', () => {
  it('gives BullMQ the budget as fixed windows (the exact sliding window is the send gate\'s)', () => {
    expect(limiterFor({ max: 20, durationMs: 10_000 })).toEqual({ max: 20, duration: 10_000 });
    expect(limiterFor({ max: 8, durationMs: 1000 })).toEqual({ max: 8, duration: 1000 });
    expect(limiterFor({ max: 7, durationMs: 933.3333 })).toEqual({ max: 7, duration: 933 });
    expect(limiterFor({ max: 1_000_000, durationMs: 1000 })).toEqual({ max: 1_000_000, duration: 1000 });
  });
});

describe('outcomeFor: the one KieError → queue outcome mapping', () => {
  const e = (code: number, message = 'x') => kieErrorFrom('POST /api/v1/jobs/createTask', { kind: 'code', code, httpStatus: 200, message });
  it.each([
    [429, 'slow-down'],
    [455, 'slow-down'],
    [401, 'pause'],
    [402, 'pause'],
    [500, 'retry'],
    [501, 'retry'],
    [422, 'fail'],
    [404, 'fail'],
    [505, 'fail'],
    [433, 'pause'],
    [408, 'fail'],
  ])('%i → %s', (code, kind) => expect(outcomeFor(e(code)).kind).toBe(kind));

  it('marks a 455 as maintenance and 402 as credits, with a fix-it message', () => {
    expect(outcomeFor(e(455))).toEqual({ kind: 'slow-down', reason: 'maintenance', retryAfterMs: null });
    const o = outcomeFor(e(402, 'insufficient credits'));
    expect(o).toMatchObject({ kind: 'pause', reason: 'credits' });
    expect(o.kind === 'pause' && o.message).toMatch(/upscale resume/);
  });

  it('treats a timeout and a reset after sending as ambiguous, a refused connection as not', () => {
    expect(outcomeFor(kieErrorFrom('POST /x', { kind: 'timeout', message: 't' }))).toMatchObject({ kind: 'retry', ambiguous: true });
    expect(outcomeFor(kieErrorFrom('POST /x', { kind: 'network', message: 'reset', maybeSent: true }))).toMatchObject({ ambiguous: true });
    expect(outcomeFor(kieErrorFrom('POST /x', { kind: 'network', message: 'refused', maybeSent: false }))).toMatchObject({ ambiguous: false });
    expect(outcomeFor(new Error('boom'))).toMatchObject({ kind: 'retry', ambiguous: false });
  });

  it('retries an unreadable answer, ambiguous when it came with a 2xx status', () => {
    const bad = (httpStatus: number) => kieErrorFrom('POST /x', { kind: 'bad-response', httpStatus, message: 'truncated' });
    expect(outcomeFor(bad(200))).toMatchObject({ kind: 'retry', ambiguous: true });
    expect(outcomeFor(bad(500))).toMatchObject({ kind: 'retry', ambiguous: false });
  });

  it('retries a gateway 502/503/504 without an envelope as ambiguous, but fails other unknown codes', () => {
    const gateway = (code: number) => kieErrorFrom('POST /x', { kind: 'code', code, httpStatus: code, message: '<html>' });
    for (const code of [502, 503, 504]) expect(outcomeFor(gateway(code))).toMatchObject({ kind: 'retry', ambiguous: true });
    expect(outcomeFor(gateway(403))).toMatchObject({ kind: 'fail', failCode: '403' });
    expect(outcomeFor(e(503))).toMatchObject({ kind: 'fail', failCode: '503' }); // an envelope code 503 under HTTP 200
  });

  it('fails 422 with kie code and message', () => {
    expect(outcomeFor(e(422, 'image_url is required'))).toEqual({ kind: 'fail', failCode: '422', failMsg: 'image_url is required' });
  });

  it('retryDelay grows exponentially with jitter and a cap', () => {
    expect(retryDelay(1, 1000, 60_000, () => 0)).toBe(500);
    expect(retryDelay(1, 1000, 60_000, () => 1)).toBe(1000);
    expect(retryDelay(4, 1000, 60_000, () => 1)).toBe(8000);
    expect(retryDelay(20, 1000, 60_000, () => 1)).toBe(60_000);
  });
});

describe('identity and callback tokens', () => {
  it('hashes batch, model, factor and input into a stable id', () => {
    const a = imageJobId('b1', 'topaz/image-upscale', '2', 'https://x/a.png');
    expect(a).toMatch(/^[0-9a-f]{24}$/);
    expect(imageJobId('b1', 'topaz/image-upscale', '2', 'https://x/a.png')).toBe(a);
    expect(imageJobId('b1', 'topaz/image-upscale', '4', 'https://x/a.png')).not.toBe(a);
    expect(imageJobId('b2', 'topaz/image-upscale', '2', 'https://x/a.png')).not.toBe(a);
    expect(submitJobId(a, 0)).toBe(a);
    expect(submitJobId(a, 2)).toBe(`${a}-g2`);
    expect(pollJobId(a, 1)).toBe(`${a}-g1-p`);
    expect(parseSubmitJobId(`${a}-g2`)).toEqual({ jobId: a, generation: 2 });
    expect(parseSubmitJobId('nope')).toBeNull();
  });

  it('validates batch ids', () => {
    expect(checkBatchId(newBatchId())).toBeNull();
    expect(checkBatchId('my-batch_1.2')).toBeNull();
    expect(checkBatchId('../etc')).toMatch(/batch id/);
    expect(checkBatchId('a'.repeat(65))).toMatch(/batch id/);
  });

  it('checks callback tokens in constant time, per job', () => {
    const t = callbackToken('secret', 'job1');
    expect(checkCallbackToken('secret', 'job1', t)).toBe(true);
    expect(checkCallbackToken('secret', 'job2', t)).toBe(false);
    expect(checkCallbackToken('other', 'job1', t)).toBe(false);
    expect(checkCallbackToken('secret', 'job1', undefined)).toBe(false);
    expect(checkCallbackToken('secret', 'job1', t.slice(1))).toBe(false);
    expect(callbackUrl('https://h.example', 'secret', 'job1')).toBe(`https://h.example/callbacks/kie/job1?t=${t}`);
  });
});
