import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import {
  enqueue,
  enqueueFile,
  InputError,
  type EnqueueItem,
  type EnqueueProgress,
} from '../../src/producer/index.js';
import { imageJobId } from '../../src/queue/identity.js';
import { JOB_OPTIONS } from '../../src/queue/queues.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { deletePrefix, freshPrefix, testRedisUrl } from '../helpers/redis.js';

const TOPAZ = 'topaz/image-upscale';
const RECRAFT = 'recraft/crisp-upscale';
const FIXTURES = 'test/fixtures/inputs';
const PRIVATE = 'resolves to a private address; set ALLOW_PRIVATE_URLS=true to allow';

let rt: Runtime;
let prefix: string;
let dir: string;

function runtime(env: Record<string, string> = {}): Runtime {
  prefix = freshPrefix('producer');
  rt = createRuntime(
    loadConfig({}, { REDIS_URL: testRedisUrl(), UPSCALE_PREFIX: prefix, LOG_LEVEL: 'silent', ...env }),
  );
  return rt;
}

/** The submit job and the record of an image, checked to agree with what was enqueued. */
async function expectImage(
  batchId: string,
  input: string,
  model: string,
  factor: string | null,
  line: number,
  meta?: Record<string, string>,
) {
  const jobId = imageJobId(batchId, model as typeof TOPAZ, factor as '2' | null, input);
  const job = await rt.queues.submit.getJob(jobId);
  expect(job, `job of ${input}`).toBeDefined();
  expect(job!.name).toBe('submit');
  expect(job!.data).toEqual({ jobId, batchId, input, model, factor, generation: 0, ...(meta ? { meta } : {}) });
  expect((await rt.store.getRecord(batchId, jobId))?.meta).toEqual(meta ?? {});
  // retention is the workers' (JOB_RETENTION), not stored in each waiting job
  expect(job!.opts).toMatchObject(JOB_OPTIONS.submit);
  expect(job!.opts.removeOnComplete).toBeUndefined();
  const record = await rt.store.getRecord(batchId, jobId);
  expect(record).toMatchObject({
    jobId,
    batchId,
    input,
    model,
    factor,
    state: 'waiting',
    line,
    generation: 0,
  });
}

const counts = async () => ({
  jobs: await rt.queues.submit.count(),
  records: await rt.redis.hlen(rt.store.keys.records('b1')),
});

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'producer-enqueue-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  await rt.close();
  await deletePrefix(testRedisUrl(), prefix);
});

describe('enqueueFile formats', () => {
  it('txt: comments and blank lines skipped, inputs trimmed, local paths stored absolute', async () => {
    runtime();
    const result = await enqueueFile(rt, `${FIXTURES}/urls.txt`, { batchId: 'b1', model: TOPAZ, factor: 4 });
    expect(result).toEqual({ batchId: 'b1', enqueued: 4, duplicates: 0, rejected: [], warnings: [] });
    await expectImage('b1', 'https://images.example.com/cats/1.png', TOPAZ, '4', 2);
    await expectImage('b1', 'https://images.example.com/cats/3.webp', TOPAZ, '4', 5);
    await expectImage('b1', resolve(FIXTURES, 'images/sample.png'), TOPAZ, '4', 6);
    expect(await counts()).toEqual({ jobs: 4, records: 4 });
    expect((await rt.store.getSummary('b1'))?.counts.waiting).toBe(4);
  });

  it('csv: columns in any order, per-line model and factor override the defaults, other columns kept as meta', async () => {
    runtime();
    const result = await enqueueFile(rt, `${FIXTURES}/images.csv`, {
      batchId: 'b1',
      model: TOPAZ,
      factor: 2,
    });
    expect(result).toMatchObject({ enqueued: 4, rejected: [] });
    await expectImage('b1', 'https://images.example.com/dogs/1.png', TOPAZ, '4', 2, { caption: 'first' });
    await expectImage('b1', 'https://images.example.com/dogs/2.png', RECRAFT, null, 3, { caption: 'second, with a comma' });
    await expectImage('b1', 'https://images.example.com/dogs/3.png', TOPAZ, '8', 4, { caption: 'a caption on two lines' });
    await expectImage('b1', 'https://images.example.com/dogs/4.png', TOPAZ, '2', 6);
  });

  it('jsonl: url / image_url / image, per-line overrides; stdin-like streams are sniffed', async () => {
    runtime();
    const result = await enqueueFile(rt, `${FIXTURES}/images.jsonl`, { batchId: 'b1', model: TOPAZ });
    expect(result).toMatchObject({ enqueued: 4, rejected: [] });
    await expectImage('b1', 'https://images.example.com/birds/1.png', TOPAZ, '2', 1);
    await expectImage('b1', 'https://images.example.com/birds/2.png', TOPAZ, '4', 2);
    await expectImage('b1', 'https://images.example.com/birds/3.png', RECRAFT, null, 4);
    await expectImage('b1', 'https://images.example.com/birds/4.png', TOPAZ, '1', 5);

    const stdin = Readable.from([
      Buffer.from('\ufeffURL,factor\r\nhttps://a.example/1.png,'),
      Buffer.from('8\r\n'),
    ]);
    const piped = await enqueueFile(rt, stdin, { batchId: 'b2', model: TOPAZ });
    expect(piped).toMatchObject({ enqueued: 1, rejected: [] });
    await expectImage('b2', 'https://a.example/1.png', TOPAZ, '8', 2);
  });

  it('the library API takes items, with their own line numbers or their position', async () => {
    runtime();
    // An async source, as a program reading from elsewhere would pass.
    const items = () =>
      Readable.from([
        { input: 'https://a.example/1.png', factor: 8 },
        { input: 'ftp://a.example/2.png', line: 40 },
        { input: 'https://a.example/3.png', model: RECRAFT },
        { input: 'https://a.example/4.png', factor: '3' },
      ]) as AsyncIterable<EnqueueItem>;
    const result = await enqueue(rt, items(), { batchId: 'b1', model: TOPAZ });
    expect(result.enqueued).toBe(2);
    expect(result.rejected).toEqual([
      {
        line: 4,
        input: 'https://a.example/4.png',
        reason: 'factor 3 is not one of 1, 2, 4, 8 for topaz/image-upscale',
      },
      {
        line: 40,
        input: 'ftp://a.example/2.png',
        reason: 'unsupported scheme "ftp:"; use an http(s) URL or a local file path',
      },
    ]);
    await expectImage('b1', 'https://a.example/3.png', RECRAFT, null, 3);
  });
});

describe('meta', () => {
  it('a CSV with an sku column: sku on the submit job and the record; a too-long value rejects only its line', async () => {
    runtime();
    const file = join(dir, 'skus.csv');
    writeFileSync(file, `url,sku\nhttps://img.example.com/12345.jpg,12345\nhttps://img.example.com/2.jpg,${'9'.repeat(300)}\nhttps://img.example.com/3.jpg,\n`);
    const result = await enqueueFile(rt, file, { batchId: 'b1', model: TOPAZ, factor: 2 });
    expect(result).toEqual({
      batchId: 'b1',
      enqueued: 2,
      duplicates: 0,
      rejected: [{ line: 3, input: 'https://img.example.com/2.jpg', reason: 'meta "sku" is 300 characters long, over the 256 limit' }],
      warnings: [],
    });
    await expectImage('b1', 'https://img.example.com/12345.jpg', TOPAZ, '2', 2, { sku: '12345' });
    await expectImage('b1', 'https://img.example.com/3.jpg', TOPAZ, '2', 4);
    expect(await rt.store.metaKeys('b1')).toEqual(['sku']);
  });

  it('items carry meta through the library API, checked the same way', async () => {
    runtime();
    const items: EnqueueItem[] = [
      { input: 'https://img.example.com/a.jpg', meta: { sku: 'A-1', qty: 3, note: null } },
      { input: 'https://img.example.com/b.jpg', meta: { 'bad key': 'x' } },
      { input: 'https://img.example.com/c.jpg', meta: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])) },
    ];
    const result = await enqueue(rt, items, { batchId: 'b1', model: TOPAZ, factor: 2 });
    expect(result.enqueued).toBe(1);
    expect(result.rejected.map((r) => [r.line, r.reason])).toEqual([
      [2, '"bad key" cannot be a meta key: use 1-64 letters, digits, "_", "." or "-" (starting with a letter, digit or "_")'],
      [3, '17 extra fields (meta), over the 16 limit: k0, k1, k2, k3, k4, k5, k6, k7, k8, k9, k10, k11, k12, k13, k14, k15, k16'],
    ]);
    await expectImage('b1', 'https://img.example.com/a.jpg', TOPAZ, '2', 1, { sku: 'A-1', qty: '3' });
  });
});

describe('idempotence', () => {
  it('the same file twice into one batch adds nothing and reports every line as a duplicate', async () => {
    runtime();
    const first = await enqueueFile(rt, `${FIXTURES}/images.csv`, {
      batchId: 'b1',
      model: TOPAZ,
      chunkSize: 3,
    });
    const again = await enqueueFile(rt, `${FIXTURES}/images.csv`, {
      batchId: 'b1',
      model: TOPAZ,
      chunkSize: 3,
    });
    expect(first).toMatchObject({ enqueued: 4, duplicates: 0 });
    expect(again).toEqual({ batchId: 'b1', enqueued: 0, duplicates: 4, rejected: [], warnings: [] });
    expect(await counts()).toEqual({ jobs: 4, records: 4 });
    expect((await rt.store.getSummary('b1'))?.total).toBe(4);
  });

  it('a line repeated in one file (in one chunk or across chunks) is one image', async () => {
    runtime();
    const file = join(dir, 'repeat.txt');
    writeFileSync(
      file,
      [
        'https://a.example/1.png',
        'https://a.example/2.png',
        'https://a.example/1.png',
        ' https://a.example/2.png',
        'https://a.example/1.png',
      ].join('\n'),
    );
    expect(await enqueueFile(rt, file, { batchId: 'b1', model: TOPAZ })).toMatchObject({
      enqueued: 2,
      duplicates: 3,
    });
    expect(await enqueueFile(rt, file, { batchId: 'b2', model: TOPAZ, chunkSize: 2 })).toMatchObject({
      enqueued: 2,
      duplicates: 3,
    });
    expect(await rt.queues.submit.count()).toBe(4);
  });

  it('a record left without its job (crash between the two steps) gets its job; a started image does not', async () => {
    runtime();
    const waiting = imageJobId('b1', TOPAZ, '2', 'https://a.example/1.png');
    const started = imageJobId('b1', TOPAZ, '2', 'https://a.example/2.png');
    await rt.store.createRecords('b1', [
      { jobId: waiting, input: 'https://a.example/1.png', model: TOPAZ, factor: '2' },
      { jobId: started, input: 'https://a.example/2.png', model: TOPAZ, factor: '2' },
    ]);
    await rt.store.transition('b1', started, { state: 'succeeded' });
    const result = await enqueue(
      rt,
      [{ input: 'https://a.example/1.png' }, { input: 'https://a.example/2.png' }],
      { batchId: 'b1', model: TOPAZ },
    );
    expect(result).toMatchObject({ enqueued: 0, duplicates: 2 });
    expect(await rt.queues.submit.getJob(waiting)).toBeDefined();
    expect(await rt.queues.submit.getJob(started)).toBeUndefined();
  });
});

describe('bad lines', () => {
  it('rejects each bad line with its line number and reason; the valid lines around them are enqueued', async () => {
    runtime();
    const cwd = process.cwd();
    mkdirSync(join(dir, 'a-directory'), { recursive: true });
    const lines = [
      'https://ok.example/1.png', // 1
      '/images/relative.png', // 2: an absolute path that does not exist
      'images/relative.png', // 3: relative URL or path: not a file
      '//cdn.example/x.png', // 4
      'ftp://files.example/x.png', // 5
      'javascript:alert(1)', // 6
      'data:image/png;base64,iVBORw0KGgo=', // 7
      `https://ok.example/${'x'.repeat(1_048_576 - 19)}`, // 8: 1 MiB
      'https://ok.example/\u0000.png', // 9
      'https://ok.example/2.png', // 10
      join(dir, 'a-directory'), // 11
      'http://127.0.0.1:8080/x.png', // 12
      'http://[::1]/x.png', // 13
      'http://169.254.169.254/latest/meta-data', // 14
      'https://ok.example/3.png', // 15
    ];
    const file = join(dir, 'bad.txt');
    writeFileSync(
      file,
      Buffer.concat([
        Buffer.from(lines.join('\r\n') + '\r\n'),
        Buffer.from([0x89, 0x50, 0x4e, 0x47, 0xff, 0xfe, 0x0a]),
      ]),
    );
    const result = await enqueueFile(rt, file, { batchId: 'b1', model: TOPAZ });
    expect(result.enqueued).toBe(3);
    expect(result.rejected.map((r) => [r.line, r.reason])).toEqual([
      [2, '/images/relative.png'.replace(/^/, 'no such file: ') + ' (a URL needs http:// or https://)'],
      [3, `no such file: ${resolve(cwd, 'images/relative.png')} (a URL needs http:// or https://)`],
      [4, 'relative URL without a scheme; write it as https://cdn.example/x.png'],
      [5, 'unsupported scheme "ftp:"; use an http(s) URL or a local file path'],
      [6, 'unsupported scheme "javascript:"; use an http(s) URL or a local file path'],
      [7, 'unsupported scheme "data:"; use an http(s) URL or a local file path'],
      [8, 'line is 1048576 characters long, over the 8192 limit'],
      [9, 'not text: contains NUL bytes'],
      [11, `${join(dir, 'a-directory')} is a directory`],
      [12, `host 127.0.0.1 ${PRIVATE}`],
      [13, `host [::1] ${PRIVATE}`],
      [14, `host 169.254.169.254 ${PRIVATE}`],
      [16, 'not text: invalid UTF-8 (the file is not UTF-8: re-export it as "CSV UTF-8" or pass --encoding windows-1252)'],
    ]);
    expect(result.rejected[6]?.input).toBe(`https://ok.example/${'x'.repeat(181)}…`);
    expect(result.rejected[7]?.input).toBe('https://ok.example/\\x00.png');
    for (const [n, line] of [
      [1, 1],
      [2, 10],
      [3, 15],
    ] as const) {
      await expectImage('b1', `https://ok.example/${n}.png`, TOPAZ, '2', line);
    }
    expect(await counts()).toEqual({ jobs: 3, records: 3 });
  });

  it('model and factor problems per line, and parse errors in csv and jsonl, leave the other lines enqueued', async () => {
    runtime();
    const csv = join(dir, 'models.csv');
    writeFileSync(
      csv,
      'url,model,factor\nhttps://a.example/1.png,dall-e,\nhttps://a.example/2.png,,3\nhttps://a.example/3.png,recraft/crisp-upscale,2\n"https://a.example/4.png"x,,\nhttps://a.example/5.png,,8\n',
    );
    const fromCsv = await enqueueFile(rt, csv, { batchId: 'b1', model: TOPAZ });
    expect(fromCsv.rejected.map((r) => [r.line, r.reason])).toEqual([
      [2, 'unknown model "dall-e"; use one of topaz/image-upscale, recraft/crisp-upscale'],
      [3, 'factor 3 is not one of 1, 2, 4, 8 for topaz/image-upscale'],
      [4, 'recraft/crisp-upscale takes no factor (got 2)'],
      [5, 'broken CSV quoting: text follows a closing quote in the same field'],
    ]);
    expect(fromCsv.enqueued).toBe(1);
    await expectImage('b1', 'https://a.example/5.png', TOPAZ, '8', 6);

    const jsonl = join(dir, 'bad.jsonl');
    writeFileSync(
      jsonl,
      '{"url":"https://a.example/6.png"}\n{"url": "https://a.example/7.png",\n[]\n{"url":"https://a.example/8.png","factor":4}\n',
    );
    const fromJsonl = await enqueueFile(rt, jsonl, { batchId: 'b1', model: TOPAZ });
    expect(fromJsonl.rejected.map((r) => [r.line, r.reason.replace(/:.*/, '')])).toEqual([
      [2, 'invalid JSON'],
      [3, 'not a JSON object (got an array)'],
    ]);
    await expectImage('b1', 'https://a.example/8.png', TOPAZ, '4', 4);
  });

  it('private literal hosts are accepted with ALLOW_PRIVATE_URLS=true', async () => {
    runtime({ ALLOW_PRIVATE_URLS: 'true' });
    const items = [
      'http://127.0.0.1:8080/x.png',
      'http://10.1.2.3/x.png',
      'http://[fe80::1]/x.png',
      'http://localhost/x.png',
    ];
    const result = await enqueue(
      rt,
      items.map((input) => ({ input })),
      { batchId: 'b1', model: TOPAZ },
    );
    expect(result).toMatchObject({ enqueued: 4, rejected: [] });
    await expectImage('b1', 'http://127.0.0.1:8080/x.png', TOPAZ, '2', 1);
  });
});

describe('input files that cannot be used', () => {
  it('a missing file, a directory or a CSV without a url column is an InputError naming the path; nothing is stored', async () => {
    runtime();
    await expect(enqueueFile(rt, join(dir, 'nope.txt'), { model: TOPAZ })).rejects.toThrow(
      new InputError(`${join(dir, 'nope.txt')}: no such file`),
    );
    await expect(enqueueFile(rt, dir, { model: TOPAZ })).rejects.toThrow(
      new InputError(`${dir}: is a directory, not a file`),
    );
    const csv = join(dir, 'noheader.csv');
    writeFileSync(csv, 'href\nhttps://a.example/1.png\n');
    await expect(enqueueFile(rt, csv, { model: TOPAZ })).rejects.toThrow(
      `${csv}: line 1: the CSV header has no "url" column (found: "href", split at ",")`,
    );
    await expect(enqueueFile(rt, csv, { model: 'nope' })).rejects.toThrow(/^model: unknown model "nope"/);
    expect(await rt.store.listBatches()).toEqual([]);
  });

  it('an empty file enqueues nothing', async () => {
    runtime();
    const empty = join(dir, 'empty.txt');
    writeFileSync(empty, '');
    expect(await enqueueFile(rt, empty, { batchId: 'b1', model: TOPAZ })).toEqual({
      batchId: 'b1',
      enqueued: 0,
      duplicates: 0,
      rejected: [],
      warnings: [],
    });
  });

  it('reports progress per chunk with bytes read', async () => {
    runtime();
    const file = join(dir, 'progress.txt');
    writeFileSync(file, Array.from({ length: 25 }, (_, i) => `https://a.example/${i}.png`).join('\n'));
    const seen: EnqueueProgress[] = [];
    await enqueueFile(rt, file, {
      batchId: 'b1',
      model: TOPAZ,
      chunkSize: 10,
      onProgress: (p) => seen.push(p),
    });
    expect(seen.length).toBeGreaterThanOrEqual(3);
    expect(seen.at(-1)).toMatchObject({
      read: 25,
      enqueued: 25,
      duplicates: 0,
      rejected: 0,
      bytesRead: seen.at(-1)?.totalBytes,
    });
  });
});
