import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  isKieError,
  KieBadResponseError,
  parseCallbackBody,
  signWebhook,
  verifyWebhookSignature,
} from '../../src/kie/index.js';

const KEY = 'whk-test-key';
const NOW_S = 1_700_000_000;
const NOW_MS = NOW_S * 1000;

describe('signWebhook', () => {
  it('is base64(HMAC-SHA256(`${taskId}.${timestamp}`, key))', () => {
    const expected = createHmac('sha256', KEY).update(`task-1.${NOW_S}`).digest('base64');
    expect(signWebhook('task-1', NOW_S, KEY)).toBe(expected);
    expect(signWebhook('task-1', String(NOW_S), KEY)).toBe(expected);
  });
});

describe('verifyWebhookSignature', () => {
  const good = {
    taskId: 'task-1',
    timestamp: String(NOW_S),
    signature: signWebhook('task-1', NOW_S, KEY),
    key: KEY,
    nowMs: NOW_MS,
  };

  it('accepts a valid signature, a numeric timestamp, and unpadded or URL-safe base64', () => {
    expect(verifyWebhookSignature(good)).toEqual({ ok: true });
    expect(verifyWebhookSignature({ ...good, timestamp: NOW_S })).toEqual({ ok: true });
    const unpadded = good.signature.replace(/=+$/, '');
    expect(verifyWebhookSignature({ ...good, signature: unpadded })).toEqual({ ok: true });
    const urlSafe = good.signature.replace(/\+/g, '-').replace(/\//g, '_');
    expect(verifyWebhookSignature({ ...good, signature: urlSafe })).toEqual({ ok: true });
  });

  it('accepts timestamps within the tolerance either way', () => {
    for (const skew of [-299, 299]) {
      const ts = NOW_S + skew;
      expect(
        verifyWebhookSignature({ ...good, timestamp: ts, signature: signWebhook('task-1', ts, KEY) }),
      ).toEqual({ ok: true });
    }
  });

  it('rejects a wrong signature, another task`s signature and another key`s', () => {
    const flipped = (good.signature.startsWith('A') ? 'B' : 'A') + good.signature.slice(1);
    expect(verifyWebhookSignature({ ...good, signature: flipped })).toEqual({
      ok: false,
      reason: 'signature does not match',
    });
    expect(verifyWebhookSignature({ ...good, taskId: 'task-2' })).toMatchObject({ ok: false });
    expect(verifyWebhookSignature({ ...good, key: 'other' })).toMatchObject({
      ok: false,
      reason: 'signature does not match',
    });
  });

  it('rejects a signature of the wrong length without throwing', () => {
    expect(verifyWebhookSignature({ ...good, signature: 'abc' })).toEqual({
      ok: false,
      reason: 'signature has the wrong length',
    });
    expect(verifyWebhookSignature({ ...good, signature: good.signature + 'AAAA' })).toMatchObject({
      ok: false,
    });
    expect(verifyWebhookSignature({ ...good, signature: 'é'.repeat(43) })).toMatchObject({ ok: false });
  });

  it('rejects old and future timestamps, even with a valid signature', () => {
    const old = NOW_S - 301;
    expect(
      verifyWebhookSignature({ ...good, timestamp: old, signature: signWebhook('task-1', old, KEY) }),
    ).toEqual({
      ok: false,
      reason: 'timestamp is 5m01s old',
    });
    const future = NOW_S + 3600;
    expect(
      verifyWebhookSignature({ ...good, timestamp: future, signature: signWebhook('task-1', future, KEY) }),
    ).toEqual({
      ok: false,
      reason: 'timestamp is 1h00m in the future',
    });
    expect(verifyWebhookSignature({ ...good, toleranceMs: 1000, nowMs: NOW_MS + 2000 })).toMatchObject({
      ok: false,
    });
  });

  it('rejects a timestamp in milliseconds (outside the window)', () => {
    const ms = String(NOW_MS);
    expect(
      verifyWebhookSignature({ ...good, timestamp: ms, signature: signWebhook('task-1', ms, KEY) }),
    ).toMatchObject({ ok: false });
  });

  it.each(['abc', '1.5e9', '-1700000000', '17000 00000', '0x6553F100', 1.5])(
    'rejects the non-numeric timestamp %j',
    (timestamp) => {
      const r = verifyWebhookSignature({ ...good, timestamp });
      expect(r.ok).toBe(false);
      expect(!r.ok && r.reason).toMatch(/not Unix seconds/);
    },
  );

  it('rejects missing parts and an empty key', () => {
    expect(verifyWebhookSignature({ ...good, signature: undefined })).toEqual({
      ok: false,
      reason: 'missing signature',
    });
    expect(verifyWebhookSignature({ ...good, signature: '' })).toEqual({
      ok: false,
      reason: 'missing signature',
    });
    expect(verifyWebhookSignature({ ...good, timestamp: null })).toEqual({
      ok: false,
      reason: 'missing timestamp',
    });
    expect(verifyWebhookSignature({ ...good, key: '' })).toEqual({
      ok: false,
      reason: 'no webhook key configured',
    });
    expect(verifyWebhookSignature({ ...good, taskId: '' })).toMatchObject({ ok: false });
  });

  it('uses Date.now() by default', () => {
    const ts = Math.floor(Date.now() / 1000);
    expect(
      verifyWebhookSignature({ taskId: 't', timestamp: ts, signature: signWebhook('t', ts, KEY), key: KEY }),
    ).toEqual({ ok: true });
  });
});

describe('parseCallbackBody', () => {
  it('reads the success format', () => {
    const body = {
      code: 200,
      msg: 'Upscale completed',
      data: {
        taskId: 'task-1',
        model: 'topaz/image-upscale',
        state: 'success',
        resultJson: '{"resultUrls":["https://x/o.png"]}',
        creditsConsumed: 20,
      },
    };
    expect(parseCallbackBody(body)).toEqual({ taskId: 'task-1', state: 'success', code: 200 });
  });

  it('reads the failure format', () => {
    const body = {
      code: 501,
      msg: 'failed',
      data: { taskId: 'task-2', state: 'fail', failCode: '500', failMsg: 'x', creditsConsumed: 0 },
    };
    expect(parseCallbackBody(body)).toEqual({ taskId: 'task-2', state: 'fail', code: 501 });
  });

  it('accepts data.task_id, JSON text and a Buffer; an unknown state word is `unknown`, a missing one and the code null', () => {
    expect(parseCallbackBody({ data: { task_id: 'task-3', state: 'weird' } })).toEqual({
      taskId: 'task-3',
      state: 'unknown',
      code: null,
    });
    expect(parseCallbackBody({ data: { task_id: 'task-3' } })).toMatchObject({ state: null });
    const text = JSON.stringify({ code: '200', data: { taskId: 'task-4', state: 'SUCCESS' } });
    expect(parseCallbackBody(text)).toEqual({ taskId: 'task-4', state: 'success', code: 200 });
    expect(parseCallbackBody(Buffer.from(text))).toEqual({ taskId: 'task-4', state: 'success', code: 200 });
  });

  const malformed: [string, unknown, RegExp][] = [
    ['undefined', undefined, /not a JSON object/],
    ['null', null, /not a JSON object/],
    ['a number', 42, /not a JSON object/],
    ['an array', [{ data: { taskId: 'x' } }], /not a JSON object/],
    ['text that is not JSON', '{"data": {', /not JSON/],
    ['no data', { code: 200, msg: 'ok' }, /no taskId/],
    ['data a string', { code: 200, data: 'task-1' }, /no taskId/],
    ['no taskId', { code: 200, data: { state: 'success' } }, /no taskId/],
    ['an empty taskId', { code: 200, data: { taskId: '' } }, /no taskId/],
    ['a taskId object', { code: 200, data: { taskId: { id: 1 } } }, /no taskId/],
  ];
  it.each(malformed)('rejects %s with a KieBadResponseError and a reason', (_label, body, reason) => {
    let caught: unknown;
    try {
      parseCallbackBody(body);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(KieBadResponseError);
    expect(isKieError(caught, 'KieBadResponseError')).toBe(true);
    expect((caught as KieBadResponseError).kieMessage).toMatch(reason);
  });
});
