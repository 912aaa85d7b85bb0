/**
 * The submit circuit breaker's count (issue 11 point 1), on the shared Redis: consecutive createTask failures of
 * *different* images with the same kie code and message trip it at SUBMIT_BREAKER (default 5), handing back every
 * image of the run; the same image twice counts once, a different failure starts a new run, a success ends it, and
 * 0 turns it off. The example: `500 This field is required` for every image of a batch.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { breakerSignature, SubmitBreaker, type BreakerImage } from '../../src/queue/submit-breaker.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { deletePrefix, freshPrefix, testRedisUrl } from '../helpers/redis.js';

const REQUIRED = breakerSignature(500, 'This field is required');
const ENUM = breakerSignature(500, 'output_format is not within the range of allowed options');
const img = (i: number, batchId = 'b1'): BreakerImage => ({ batchId, jobId: `job-${i}`, generation: i % 2 });

describe('SubmitBreaker', () => {
  let rt: Runtime | undefined;
  let prefix = '';
  afterEach(async () => {
    await rt?.close();
    rt = undefined;
    await deletePrefix(testRedisUrl(), prefix);
  });

  function breaker(env: Record<string, string> = {}): SubmitBreaker {
    prefix = freshPrefix('brk');
    rt = createRuntime(loadConfig({}, { REDIS_URL: testRedisUrl(), UPSCALE_PREFIX: prefix, LOG_LEVEL: 'silent', ...env }));
    return new SubmitBreaker(rt.redis, rt.store.keys, rt.config.submitBreaker);
  }

  it('SUBMIT_BREAKER defaults to 5: five different images refused with 500 "This field is required" trip it, with all five', async () => {
    const b = breaker();
    expect(rt!.config.submitBreaker).toBe(5);
    expect(REQUIRED).toBe('500 This field is required');
    for (let i = 1; i <= 4; i++) expect(await b.failed(img(i), REQUIRED)).toEqual({ tripped: false, run: i });
    const v = await b.failed(img(5, 'b2'), REQUIRED);
    expect(v).toMatchObject({ tripped: true, run: 5, signature: REQUIRED });
    const images = v.tripped ? v.images : [];
    expect([...images].sort((a, c) => a.jobId.localeCompare(c.jobId))).toEqual([img(1), img(2), img(3), img(4), img(5, 'b2')]);
    // Tripping ends the run: the next failure starts counting again.
    expect(await b.failed(img(6), REQUIRED)).toEqual({ tripped: false, run: 1 });
  });

  it('the same image failing again counts once', async () => {
    const b = breaker();
    for (let n = 0; n < 6; n++) expect((await b.failed(img(1), REQUIRED)).tripped).toBe(false);
    expect(await b.failed(img(2), REQUIRED)).toEqual({ tripped: false, run: 2 });
  });

  it('a different code or message starts a new run; a success ends the run', async () => {
    const b = breaker();
    for (let i = 1; i <= 4; i++) await b.failed(img(i), REQUIRED);
    expect(await b.failed(img(5), ENUM)).toEqual({ tripped: false, run: 1 });
    expect(await b.failed(img(6), breakerSignature(501, 'This field is required'))).toEqual({ tripped: false, run: 1 });
    for (let i = 7; i <= 10; i++) await b.failed(img(i), REQUIRED);
    await b.reset();
    expect(await b.failed(img(11), REQUIRED)).toEqual({ tripped: false, run: 1 });
  });

  it('SUBMIT_BREAKER=3 trips at 3; SUBMIT_BREAKER=0 never trips', async () => {
    const three = breaker({ SUBMIT_BREAKER: '3' });
    await three.failed(img(1), REQUIRED);
    await three.failed(img(2), REQUIRED);
    expect((await three.failed(img(3), REQUIRED)).tripped).toBe(true);
    await rt!.close();
    await deletePrefix(testRedisUrl(), prefix);
    const off = breaker({ SUBMIT_BREAKER: '0' });
    expect(off.enabled).toBe(false);
    for (let i = 1; i <= 20; i++) expect((await off.failed(img(i), REQUIRED)).tripped).toBe(false);
  });

  it('a probe meeting the signature that tripped it trips again at once (threshold 1)', async () => {
    const b = breaker();
    expect(await b.failed(img(1), REQUIRED, 1)).toMatchObject({ tripped: true, run: 1, images: [img(1)] });
  });
});
