/** The pure readers behind the client: readEnvelope and transportFailure. */
import { describe, expect, it } from 'vitest';
import { readEnvelope, snippet, transportFailure } from '../../src/kie/index.js';

const ctx = { deadlineHit: false, timeoutMs: 1000, scrub: (t: string) => t.replace('SECRET', '[redacted]') };
const err = (code: string | undefined, message: string) =>
  Object.assign(new Error(message), code ? { code } : {});

describe('readEnvelope', () => {
  it('a success envelope, with msg or message, and data defaulting to null', () => {
    expect(readEnvelope(200, '{"code":200,"msg":"success","data":{"a":1}}')).toMatchObject({
      ok: true,
      envelope: { code: 200, message: 'success', data: { a: 1 } },
    });
    expect(readEnvelope(200, '{"code":200,"message":"fine"}')).toMatchObject({
      ok: true,
      envelope: { message: 'fine', data: null },
    });
  });

  it('a failing code wins over HTTP 200, and a message is always there', () => {
    expect(readEnvelope(200, '{"code":455}')).toEqual({
      ok: false,
      failure: { kind: 'code', code: 455, httpStatus: 200, message: 'code 455' },
    });
  });

  it('without an envelope, a non-2xx status maps like the code, with a short text excerpt', () => {
    const html = `<html><head><style>p{}</style></head><body><p>Bad   gateway</p>${'x'.repeat(500)}</body></html>`;
    const r = readEnvelope(502, html);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.failure).toMatchObject({ kind: 'code', code: 502, httpStatus: 502 });
    expect((r.failure as { message: string }).message).toMatch(/^Bad gateway x+…$/);
    expect(readEnvelope(503, '{"error":"down"}')).toMatchObject({
      ok: false,
      failure: { code: 503, message: 'HTTP 503' },
    });
    expect(readEnvelope(503, '{"msg":"down"}')).toMatchObject({
      ok: false,
      failure: { code: 503, message: 'down' },
    });
  });

  it('snippet collapses whitespace and cuts long text', () => {
    expect(snippet('  a \n\t b  ')).toBe('a b');
    expect(snippet('y'.repeat(10), 4)).toBe('yyyy…');
  });
});

describe('transportFailure', () => {
  it.each(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'CERT_HAS_EXPIRED'])(
    '%s: not sent',
    (code) => {
      expect(transportFailure(err(code, `boom ${code}`), ctx)).toMatchObject({
        kind: 'network',
        maybeSent: false,
      });
    },
  );

  it.each(['ECONNRESET', 'EPIPE', 'ERR_STREAM_PREMATURE_CLOSE', undefined])(
    '%s: may have been sent',
    (code) => {
      expect(transportFailure(err(code, 'socket hang up'), ctx)).toMatchObject({
        kind: 'network',
        maybeSent: true,
      });
    },
  );

  it('a code on the cause counts too', () => {
    const e = Object.assign(new Error('outer'), { cause: { code: 'ENOTFOUND' } });
    expect(transportFailure(e, ctx)).toMatchObject({ kind: 'network', maybeSent: false });
  });

  it('timeouts: axios ECONNABORTED / ETIMEDOUT, or the whole-exchange deadline', () => {
    expect(transportFailure(err('ECONNABORTED', 'timeout of 1000ms exceeded'), ctx)).toMatchObject({
      kind: 'timeout',
    });
    expect(transportFailure(err('ETIMEDOUT', 'x'), ctx)).toMatchObject({ kind: 'timeout' });
    expect(transportFailure(err('ERR_CANCELED', 'canceled'), { ...ctx, deadlineHit: true })).toMatchObject({
      kind: 'timeout',
      message: 'no answer within 1.0s',
    });
  });

  it('an over-size answer is a bad response; an over-size body an invalid request', () => {
    expect(
      transportFailure(err('ERR_BAD_RESPONSE', 'maxContentLength size of 10 exceeded'), ctx),
    ).toMatchObject({
      kind: 'bad-response',
      message: expect.stringMatching(/too large/),
    });
    expect(
      transportFailure(err('ERR_BAD_REQUEST', 'Request body larger than maxBodyLength limit'), ctx),
    ).toMatchObject({
      kind: 'invalid-request',
    });
  });

  it('scrubs messages and carries a plain cause (no request config)', () => {
    const axiosLike = Object.assign(new Error('fail SECRET'), {
      code: 'ECONNRESET',
      config: { headers: { Authorization: 'Bearer SECRET' } },
    });
    const f = transportFailure(axiosLike, ctx);
    expect(JSON.stringify(f)).not.toContain('SECRET');
    expect((f as { cause: Error }).cause).not.toHaveProperty('config');
  });
});
