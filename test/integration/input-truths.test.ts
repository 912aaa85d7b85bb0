/**
 * The examples end to end, on real parts (simulator, Redis, lanes in this process, a signing image host on
 * port 0): one URL exactly from the line to createTask, access refused vs bad image, truncated and animated inputs
 * refused before any credit is spent, EXIF orientation recorded and a sideways result flagged, expiring links.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { enqueue } from '../../src/producer/index.js';
import { createRuntime } from '../../src/runtime.js';
import { renderSampleImage } from '../../src/sim/images.js';
import { allowAnimated } from '../../src/worker/input-policy.js';
import { preflightLines } from '../../src/worker/check-lines.js';
import { createPrepareInput } from '../../src/worker/prepare-input.js';
import { preflight } from '../../src/worker/preflight.js';
import { deletePrefix, freshPrefix, testRedisUrl } from '../helpers/redis.js';
import { startLocalRig, waitForRecords, type LocalRig } from './preflight-fixtures.js';
import { inputFactsKey } from '../../src/worker/prepare-input.js';

const TOPAZ = 'topaz/image-upscale';
/** The signed path, exactly: a quote, dot segments, an escaped slash in the query. */
const SIGNED_PATH = "/s/a/./b/../p'1.jpg?X-Sig=abc%2Fd&Expires=1900000000";

let host: Server;
let hostPort = 0;
let png: Buffer;
const seen: { url: string; host: string }[] = [];

beforeAll(async () => {
  png = await renderSampleImage('signed', 40, 30, 'png');
  // A host that checks its "signature" over the exact request target and Host header, as S3 and CDNs do.
  host = createServer((req, res) => {
    seen.push({ url: req.url ?? '', host: req.headers.host ?? '' });
    // Images sent Content-Encoded though nobody asked (a misconfigured CDN or server): /enc/<coding>.png.
    const coded = /^\/enc\/(gzip|deflate|br|zstd)\.png$/.exec(req.url ?? '');
    if (coded) {
      const coding = coded[1] as string;
      const body = coding === 'gzip' ? gzipSync(png) : coding === 'deflate' ? deflateSync(png) : coding === 'br' ? brotliCompressSync(png) : png;
      res.writeHead(200, { 'content-type': 'image/png', 'content-encoding': coding, 'content-length': body.length }).end(body);
      return;
    }
    const exact = req.url === SIGNED_PATH && req.headers.host === `127.0.0.1:${hostPort}`;
    const spaced = req.url === '/p/My%20Photo.png';
    if (!exact && !spaced) {
      res.writeHead(403, { 'content-type': 'application/xml' }).end('<Error><Code>SignatureDoesNotMatch</Code></Error>');
      return;
    }
    res.writeHead(200, { 'content-type': 'image/png', 'content-length': png.length }).end(png);
  });
  await new Promise<void>((resolve) => host.listen(0, '127.0.0.1', resolve));
  hostPort = (host.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((resolve) => host.close(() => resolve())));

let rig: LocalRig | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
});

describe('one URL, exactly', () => {
  it('pre-flight requests the raw path, query and Host (a named host resolved by the seam)', async () => {
    const url = `http://img.example.test:${hostPort}${SIGNED_PATH}`;
    seen.length = 0;
    const r = await preflight({ url }, TOPAZ, '2', { allowPrivate: true, resolve: () => Promise.resolve([{ address: '127.0.0.1', family: 4 }]) });
    // The host compares against 127.0.0.1:<port>, so this named request is refused: and reported as access refused.
    expect(r).toEqual({ ok: false, permanent: true, kind: 'access', reason: 'the host refused access (HTTP 403): expired or private link?' });
    expect(seen).toEqual([{ url: SIGNED_PATH, host: `img.example.test:${hostPort}` }]);
  });

  it('the issue\'s signed line passes the pre-flight and reaches createTask byte for byte; a bad signature is "access refused", not a bad image', async () => {
    rig = await startLocalRig({ env: { OUTPUT_DIR: '' } });
    const good = `http://127.0.0.1:${hostPort}${SIGNED_PATH}`;
    const bad = `http://127.0.0.1:${hostPort}/s/a/./b/../p'1.jpg?X-Sig=forged&Expires=1900000000`;
    const spaced = `http://127.0.0.1:${hostPort}/p/My Photo.png`;
    const res = await enqueue(rig.rt, [{ input: good }, { input: bad }, { input: spaced }], { batchId: 'exact', model: TOPAZ });
    expect(res).toMatchObject({ enqueued: 3, rejected: [] });
    await rig.start();
    const records = await waitForRecords(rig.rt, 'exact');
    const byInput = new Map(records.map((r) => [r.input, r]));
    expect(byInput.get(good)).toMatchObject({ state: 'succeeded', originalInput: null, inputWidth: 40, inputHeight: 30 });
    expect(byInput.get(bad)).toMatchObject({ state: 'failed', failCode: 'access', failMsg: 'the host refused access (HTTP 403): expired or private link?', submitAttempts: 0 });
    const encoded = `http://127.0.0.1:${hostPort}/p/My%20Photo.png`;
    expect(byInput.get(encoded)).toMatchObject({ state: 'succeeded', originalInput: spaced });
    const sent = rig.sim.tasks().map((t) => (JSON.parse(t.param) as { input: { image_url: string } }).input.image_url).sort();
    expect(sent).toEqual([encoded, good].sort());
  });
});

describe('Content-Encoding of inputs: pre-flight and the simulator\'s fetcher agree', () => {
  it('gzip, deflate and br inputs pass the pre-flight and are fetched, decoded and upscaled by the simulator; an unknown coding is refused by both', async () => {
    rig = await startLocalRig({ env: { OUTPUT_DIR: '' } });
    const url = (coding: string) => `http://127.0.0.1:${hostPort}/enc/${coding}.png`;
    for (const coding of ['gzip', 'deflate', 'br']) {
      expect(await preflight({ url: url(coding) }, TOPAZ, '2', { allowPrivate: true }), coding).toMatchObject({ ok: true, facts: { mimeType: 'image/png', width: 40, height: 30 } });
    }
    const zstd = await preflight({ url: url('zstd') }, TOPAZ, '2', { allowPrivate: true, tries: 1 });
    expect(zstd).toMatchObject({ ok: false, permanent: true, reason: 'the answer is sent with Content-Encoding "zstd", which cannot be decoded' });
    // The simulator's own createTask fetch (kie.ai's stand-in), asked directly: it decodes too.
    const direct = await fetch(`${rig.sim.url}/api/v1/jobs/createTask`, {
      method: 'POST',
      headers: { authorization: `Bearer ${rig.env.KIE_API_KEY ?? ''}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: TOPAZ, input: { image_url: url('zstd'), upscale_factor: '2' } }),
    });
    expect(((await direct.json()) as { msg: string }).msg).toBe(`cannot use the input image ${url('zstd')}: it is sent with Content-Encoding "zstd", which cannot be decoded`);
    // Through the lane: pre-flight passes, the simulator accepts, the tasks succeed.
    await enqueue(rig.rt, ['gzip', 'deflate', 'br'].map((c) => ({ input: url(c) })), { batchId: 'encoded', model: TOPAZ });
    await rig.start();
    const records = await waitForRecords(rig.rt, 'encoded');
    expect(records.map((r) => [r.input, r.state, r.failMsg, r.inputWidth])).toEqual(
      expect.arrayContaining(['gzip', 'deflate', 'br'].map((c) => [url(c), 'succeeded', null, 40])),
    );
    expect(records).toHaveLength(3);
  });
});

describe('image truths before paying', () => {
  it('a JPEG cut at 60 % and a 10-frame WebP are refused before createTask; --allow-animated lets the WebP through', async () => {
    rig = await startLocalRig({ env: { OUTPUT_DIR: '' } });
    const cut = rig.image('cut60-photo', 640, 480, 'jpg');
    const anim = rig.image('anim10-clip', 64, 48, 'webp');
    await enqueue(rig.rt, [{ input: cut }, { input: anim }], { batchId: 'truths', model: TOPAZ });
    await enqueue(rig.rt, [{ input: anim }], { batchId: 'animated-ok', model: TOPAZ });
    await allowAnimated(rig.rt, 'animated-ok');
    await rig.start();
    const records = await waitForRecords(rig.rt, 'truths');
    const of = (input: string) => records.find((r) => r.input === input);
    expect(of(cut)).toMatchObject({ state: 'failed', failCode: 'preflight', submitAttempts: 0 });
    expect(of(cut)?.failMsg).toMatch(/^the image is incomplete or damaged: the JPEG file is truncated: it ends after \d+ bytes, before its end marker \(EOI\)$/);
    expect(of(anim)).toMatchObject({ state: 'failed', failCode: 'preflight', submitAttempts: 0 });
    expect(of(anim)?.failMsg).toMatch(/animated \(10 frames\).*--allow-animated/);
    const [allowed] = await waitForRecords(rig.rt, 'animated-ok');
    expect(allowed).toMatchObject({ state: 'succeeded', submitAttempts: 1 });
    expect(rig.sim.stats().createAccepted).toBe(1);

    // --check: the same lines are rejected at enqueue, with their line numbers; a good line passes untouched.
    const good = rig.image('fine', 32, 32, 'png');
    const checked = [];
    for await (const l of preflightLines([{ line: 1, input: cut }, { line: 2, input: good }, { line: 3, input: anim }], { defaultModel: TOPAZ, preflight: { allowPrivate: true } })) checked.push(l);
    expect(checked.map((l) => [l.line, l.reason?.slice(0, 40) ?? null])).toEqual([
      [1, 'pre-flight: the image is incomplete or d'],
      [2, null],
      [3, 'pre-flight: the image is animated (10 fr'],
    ]);
  });

  it('a complete JPEG with 2 KB zeroed in the middle is refused before createTask with the decoder\'s reason, in the lane and with --check', async () => {
    rig = await startLocalRig({ env: { OUTPUT_DIR: '' } });
    const damaged = rig.image('zero2-photo', 800, 600, 'jpg');
    const good = rig.image('photo', 800, 600, 'jpg');
    const reason =
      'the image is incomplete or damaged: the file is complete but its data is damaged ' +
      '(the decoder reports "VipsJpeg: Corrupt JPEG data: premature end of data segment")';
    await enqueue(rig.rt, [{ input: damaged }, { input: good }], { batchId: 'zeroed', model: TOPAZ });
    await rig.start();
    const records = await waitForRecords(rig.rt, 'zeroed');
    expect(records.find((r) => r.input === damaged)).toMatchObject({ state: 'failed', failCode: 'preflight', failMsg: reason, submitAttempts: 0 });
    expect(records.find((r) => r.input === good)).toMatchObject({ state: 'succeeded', submitAttempts: 1 });
    expect(rig.sim.stats().createAccepted).toBe(1);
    const checked = [];
    for await (const l of preflightLines([{ line: 7, input: damaged }], { defaultModel: TOPAZ, preflight: { allowPrivate: true } })) checked.push(l);
    expect(checked).toEqual([expect.objectContaining({ line: 7, reason: `pre-flight: ${reason}` })]);
  });

  it('EXIF orientation 6: the displayed size is recorded, and a result that comes back sideways is flagged (file kept)', async () => {
    rig = await startLocalRig();
    const input = rig.image('rot6-portrait', 64, 48, 'jpg'); // stored 64×48, displayed 48×64
    await enqueue(rig.rt, [{ input }], { batchId: 'turned', model: TOPAZ, factor: '2' });
    await rig.start();
    const [r] = await waitForRecords(rig.rt, 'turned', { downloads: true });
    expect(r).toMatchObject({ state: 'succeeded', inputWidth: 48, inputHeight: 64, inputOrientation: 6, orientationMismatch: true, outputProblem: null });
    // The simulator upscales the stored pixels (128×96, no EXIF): the displayed input × 2 would be 96×128.
    expect(r?.outputPath).not.toBeNull();
    // The pre-flight facts were forgotten once createTask was accepted (Redis per image in flight); the check above
    // came from the record's displayed size.
    expect(await rig.rt.redis.hlen(inputFactsKey(rig.rt, 'turned'))).toBe(0);
  });
});

describe('expiring inputs', () => {
  const s3 = (at: number, ttlS: number) => {
    const d = new Date(at).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
    return `https://bucket.s3.amazonaws.test/k.jpg?X-Amz-Date=${d}&X-Amz-Expires=${ttlS}&X-Amz-Signature=f00`;
  };

  it('refuses an expired presigned link at enqueue (line and reason kept, the other lines enqueued) and warns of one that will expire before its turn', async () => {
    const prefix = freshPrefix('expiry');
    // A slow create budget (1 a minute) and 30 images ahead: the estimated submission is about 31 minutes away.
    const rt = createRuntime(loadConfig({}, { REDIS_URL: testRedisUrl(), UPSCALE_PREFIX: prefix, LOG_LEVEL: 'silent', KIE_CREATE_LIMIT: '1/1m' }));
    try {
      await enqueue(rt, Array.from({ length: 30 }, (_, i) => ({ input: `https://cdn.example.test/${i}.jpg` })), { batchId: 'ahead', model: TOPAZ });
      const now = Date.now();
      const expired = s3(now - 2 * 3600_000, 3600);
      const soon = s3(now - 50 * 60_000, 3600); // expires in about 10 minutes
      const later = s3(now, 7 * 86_400);
      const res = await enqueue(rt, [{ input: expired }, { input: soon }, { input: later }], { batchId: 'links', model: TOPAZ });
      expect(res.enqueued).toBe(2);
      expect(res.rejected).toEqual([{ line: 1, input: expired, reason: expect.stringMatching(/^the link expired at .* \(X-Amz-Date \+ X-Amz-Expires\); sign a new URL$/) as unknown }]);
      expect(res.warnings).toEqual([{ line: 2, input: soon, reason: expect.stringMatching(/^the link expires at .*, in (9m59|10m00)s, before its estimated submission in 3\dm\d\ds/) as unknown }]);
      const records = [];
      for await (const r of rt.store.records('links')) records.push(r);
      const warned = records.find((r) => r.input === soon);
      expect(warned?.inputWarning).toBe(res.warnings[0]?.reason);
      expect(warned?.inputExpiresAt).toBe(Math.floor((now - 50 * 60_000) / 1000) * 1000 + 3600_000);
      expect(records.find((r) => r.input === later)).toMatchObject({ inputWarning: null, inputExpiresAt: expect.any(Number) as unknown });

      // At submission: a link that expired while it waited fails as 'expired', without a fetch or a createTask.
      const prepare = createPrepareInput(rt, { now: () => now + 3600_000 });
      const jobId = records.find((r) => r.input === soon)?.jobId ?? '';
      expect(await prepare({ jobId, batchId: 'links', input: soon, model: TOPAZ, factor: '2', generation: 0 })).toMatchObject({
        ok: false,
        state: 'failed',
        failCode: 'expired',
        failMsg: expect.stringMatching(/^the link expired at/) as unknown,
      });
    } finally {
      await rt.close();
      await deletePrefix(testRedisUrl(), prefix);
    }
  });
});
