import { Writable } from 'node:stream';
import { parse } from 'csv-parse/sync';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { csvColumns, exportBatch, UnknownBatchError } from '../../src/results/export.js';
import { recordsInLineOrder } from '../../src/results/line-order.js';
import { RECORD_FIELDS } from '../../src/results/record.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { deletePrefix, freshPrefix, testRedisUrl } from '../helpers/redis.js';

const MODEL = 'topaz/image-upscale' as const;
const BATCH = 'b-export';
const N = 1200;
const NASTY = 'bad input, "quoted"\nsecond line';
const id = (n: number) => n.toString(16).padStart(24, '0');

/** A slow sink with a tiny buffer, so the export must wait for 'drain'; counts how often it had to. */
class SlowSink extends Writable {
  chunks: string[] = [];
  drains = 0;
  constructor() {
    super({ highWaterMark: 1024, decodeStrings: false });
    this.on('drain', () => this.drains++);
  }
  override _write(chunk: string | Buffer, _enc: BufferEncoding, done: (e?: Error | null) => void): void {
    this.chunks.push(String(chunk));
    setImmediate(done);
  }
  text(): string {
    return this.chunks.join('');
  }
}

describe('exportBatch', () => {
  let rt: Runtime;
  let prefix: string;

  afterEach(async () => {
    await rt.close();
    await deletePrefix(testRedisUrl(), prefix);
  });

  async function seed(): Promise<void> {
    prefix = freshPrefix('exp');
    rt = createRuntime(loadConfig({}, { REDIS_URL: testRedisUrl(), UPSCALE_PREFIX: prefix, LOG_LEVEL: 'silent' }));
    const images = Array.from({ length: N }, (_, i) => ({ jobId: id(i + 1), input: `https://img.test/${i + 1}.png`, model: MODEL, factor: '2' as const, line: i + 1 }));
    await rt.store.createRecords(BATCH, images);
    await rt.store.transition(BATCH, id(1), { state: 'failed', failCode: '422', failMsg: NASTY, completedAt: 10 });
    await rt.store.transition(BATCH, id(2), {
      state: 'succeeded',
      taskId: 'task-2',
      resultUrls: ['https://r.test/a.png', 'https://r.test/b.png'],
      creditsConsumed: 12.5,
      costTimeMs: 4000,
      submittedAt: 5,
      completedAt: 9,
    });
  }

  it('writes JSONL with exactly the record fields in order, across several pages, honouring backpressure', async () => {
    await seed();
    const out = new SlowSink();
    expect(await exportBatch(rt.store, BATCH, { format: 'jsonl', out, pageSize: 100 })).toBe(N);
    const lines = out.text().split('\n');
    expect(lines.pop()).toBe('');
    expect(lines).toHaveLength(N);
    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const r of records) expect(Object.keys(r)).toEqual(RECORD_FIELDS);
    expect(new Set(records.map((r) => r.jobId)).size).toBe(N);
    expect(records.find((r) => r.jobId === id(1))).toMatchObject({ state: 'failed', failMsg: NASTY, taskId: null });
    expect(records.find((r) => r.jobId === id(2))).toMatchObject({ resultUrls: ['https://r.test/a.png', 'https://r.test/b.png'], creditsConsumed: 12.5 });
    expect(out.drains).toBeGreaterThan(0);
  });

  it('writes RFC 4180 CSV: header, quoting of commas, quotes and newlines, urls joined by a space, nulls empty', async () => {
    await seed();
    const out = new SlowSink();
    expect(await exportBatch(rt.store, BATCH, { format: 'csv', out })).toBe(N);
    const text = out.text();
    expect(text.startsWith(csvColumns().join(',') + '\r\n')).toBe(true);
    expect(text).toContain('"bad input, ""quoted""\nsecond line"');
    const rows = parse<Record<string, string>>(text, { columns: true, record_delimiter: '\r\n' });
    expect(rows).toHaveLength(N);
    expect(Object.keys(rows[0]!)).toEqual(csvColumns());
    const failed = rows.find((r) => r.jobId === id(1))!;
    expect(failed).toMatchObject({ state: 'failed', failCode: '422', failMsg: NASTY, taskId: '', outputPath: '', completedAt: '10' });
    const ok = rows.find((r) => r.jobId === id(2))!;
    expect(ok).toMatchObject({ resultUrls: 'https://r.test/a.png https://r.test/b.png', creditsConsumed: '12.5', factor: '2', generation: '0' });
    expect(rows.find((r) => r.jobId === id(3))).toMatchObject({ state: 'waiting', resultUrls: '', line: '3' });
  });

  it('exports meta: a JSONL object, and one sorted meta.<key> column per key of the batch in CSV', async () => {
    prefix = freshPrefix('exp');
    rt = createRuntime(loadConfig({}, { REDIS_URL: testRedisUrl(), UPSCALE_PREFIX: prefix, LOG_LEVEL: 'silent' }));
    await rt.store.createRecords(BATCH, [
      { jobId: id(1), input: 'https://img.test/1.png', model: MODEL, factor: '2', line: 2, meta: { sku: '12345', colour: 'red, "dark"' } },
      { jobId: id(2), input: 'https://img.test/2.png', model: MODEL, factor: '2', line: 3 },
    ]);
    await rt.store.createRecords(BATCH, [{ jobId: id(3), input: 'https://img.test/3.png', model: MODEL, factor: '2', line: 4, meta: { alt: 'x' } }]);
    await rt.store.transition(BATCH, id(1), { state: 'submitting' });
    const jsonl = new SlowSink();
    await exportBatch(rt.store, BATCH, { format: 'jsonl', out: jsonl });
    const records = jsonl.text().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records.find((r) => r.jobId === id(1))?.meta).toEqual({ sku: '12345', colour: 'red, "dark"' });
    expect(records.find((r) => r.jobId === id(2))?.meta).toEqual({});
    const csv = new SlowSink();
    await exportBatch(rt.store, BATCH, { format: 'csv', out: csv });
    const rows = parse<Record<string, string>>(csv.text(), { columns: true, record_delimiter: '\r\n' });
    expect(Object.keys(rows[0]!)).toEqual([...csvColumns(), 'meta.alt', 'meta.colour', 'meta.sku']);
    expect(rows.find((r) => r.jobId === id(1))).toMatchObject({ 'meta.sku': '12345', 'meta.colour': 'red, "dark"', 'meta.alt': '', state: 'submitting' });
    expect(rows.find((r) => r.jobId === id(3))).toMatchObject({ 'meta.alt': 'x', 'meta.sku': '' });
  });

  it('CSV shows values a spreadsheet would run as formulas as text (a leading \'), numbers as numbers; JSONL keeps them verbatim', async () => {
    prefix = freshPrefix('exp');
    rt = createRuntime(loadConfig({}, { REDIS_URL: testRedisUrl(), UPSCALE_PREFIX: prefix, LOG_LEVEL: 'silent' }));
    // The trial's SKUs (+1+1, @SUM(A1)) and the rest of the class: =, -, tab and CR first; plain numbers untouched.
    const skus = ['+1+1', '@SUM(A1)', '=HYPERLINK("http://x.test","click")', '-2+3', '\tcmd', '\r=1', '-12', '+3.5', '1e5', 'SKU-1'];
    await rt.store.createRecords(BATCH, skus.map((sku, i) => ({ jobId: id(i + 1), input: `https://img.test/${i}.png`, model: MODEL, factor: '2' as const, line: i + 1, meta: { sku } })));
    const csv = new SlowSink();
    await exportBatch(rt.store, BATCH, { format: 'csv', out: csv });
    const rows = parse<Record<string, string>>(csv.text(), { columns: true, record_delimiter: '\r\n' });
    expect(rows.map((r) => r['meta.sku'])).toEqual(["'+1+1", "'@SUM(A1)", '\'=HYPERLINK("http://x.test","click")', "'-2+3", "'\tcmd", "'\r=1", '-12', '+3.5', '1e5', 'SKU-1']);
    const jsonl = new SlowSink();
    await exportBatch(rt.store, BATCH, { format: 'jsonl', out: jsonl });
    expect(jsonl.text().trim().split('\n').map((l) => (JSON.parse(l) as { meta: { sku: string } }).meta.sku)).toEqual(skus);
  });

  it('rejects an unknown batch before writing anything', async () => {
    await seed();
    const out = new SlowSink();
    await expect(exportBatch(rt.store, 'missing', { out })).rejects.toThrow(UnknownBatchError);
    await expect(exportBatch(rt.store, 'missing', { out })).rejects.toThrow('no batch named missing');
    expect(out.chunks).toEqual([]);
  });

  it('exports by line (then job id), page by page from the index: job ids that sort apart from their lines come out by line', async () => {
    prefix = freshPrefix('exp');
    rt = createRuntime(loadConfig({}, { REDIS_URL: testRedisUrl(), UPSCALE_PREFIX: prefix, LOG_LEVEL: 'silent' }));
    const n = 95;
    // Job ids scrambled against the lines (as the real hash ids are); two files share line numbers (ties by job id).
    const images = Array.from({ length: n }, (_, i) => ({ jobId: id(((i * 37) % n) + 1), input: `https://img.test/${i + 1}.png`, model: MODEL, factor: '2' as const, line: (i % 60) + 1 }));
    await rt.store.createRecords(BATCH, images);
    const calls = vi.spyOn(rt.store.redis, 'evalsha');
    const out = new SlowSink();
    expect(await exportBatch(rt.store, BATCH, { format: 'jsonl', out, pageSize: 10 })).toBe(n);
    const rows = out.text().trim().split('\n').map((l) => JSON.parse(l) as { line: number; jobId: string });
    const expected = [...images].sort((a, b) => a.line - b.line || (a.jobId < b.jobId ? -1 : 1)).map((i) => [i.line, i.jobId]);
    expect(rows.map((r) => [r.line, r.jobId])).toEqual(expected);
    // One Lua call per page of 10 (no call that reads the batch whole).
    expect(calls.mock.calls.length).toBe(Math.ceil(n / 10));
    calls.mockRestore();
    // CSV in the same order.
    const csv = new SlowSink();
    await exportBatch(rt.store, BATCH, { format: 'csv', out: csv, pageSize: 7 });
    const csvRows = parse<Record<string, string>>(csv.text(), { columns: true, record_delimiter: '\r\n' });
    expect(csvRows.map((r) => [Number(r.line), r.jobId])).toEqual(expected);
  });

  it('an image present for the whole export comes out exactly once, while images are added in front of and behind the cursor', async () => {
    prefix = freshPrefix('exp');
    rt = createRuntime(loadConfig({}, { REDIS_URL: testRedisUrl(), UPSCALE_PREFIX: prefix, LOG_LEVEL: 'silent' }));
    const images = Array.from({ length: 50 }, (_, i) => ({ jobId: id(1000 - i), input: `https://img.test/${i}.png`, model: MODEL, factor: '2' as const, line: (i + 1) * 10 }));
    await rt.store.createRecords(BATCH, images);
    const seen: string[] = [];
    let added = false;
    for await (const r of recordsInLineOrder(rt.store, BATCH, 10)) {
      seen.push(r.jobId);
      if (!added && seen.length === 15) {
        added = true;
        await rt.store.createRecords(BATCH, [
          { jobId: id(1), input: 'https://img.test/front.png', model: MODEL, factor: '2', line: 5 }, // before the cursor
          { jobId: id(2), input: 'https://img.test/back.png', model: MODEL, factor: '2', line: 1000 }, // after it
        ]);
      }
    }
    expect(seen.filter((j) => images.some((i) => i.jobId === j))).toEqual(images.map((i) => i.jobId));
    expect(seen).toContain(id(2));
    expect(seen).not.toContain(id(1));
  });

  it('indexes a batch written before the index existed, then exports it whole and by line', async () => {
    prefix = freshPrefix('exp');
    rt = createRuntime(loadConfig({}, { REDIS_URL: testRedisUrl(), UPSCALE_PREFIX: prefix, LOG_LEVEL: 'silent' }));
    const images = Array.from({ length: 30 }, (_, i) => ({ jobId: id(100 - i), input: `https://img.test/${i}.png`, model: MODEL, factor: '2' as const, line: i + 1 }));
    await rt.store.createRecords(BATCH, images);
    await rt.redis.del(`${rt.store.keys.index(BATCH)}line:all`);
    const out = new SlowSink();
    expect(await exportBatch(rt.store, BATCH, { format: 'jsonl', out })).toBe(30);
    expect(out.text().trim().split('\n').map((l) => (JSON.parse(l) as { line: number }).line)).toEqual(images.map((i) => i.line));
  });

  it('--bom: a CSV starts with the UTF-8 byte order mark (Excel then reads ü right); none by default; none for JSONL', async () => {
    prefix = freshPrefix('exp');
    rt = createRuntime(loadConfig({}, { REDIS_URL: testRedisUrl(), UPSCALE_PREFIX: prefix, LOG_LEVEL: 'silent' }));
    await rt.store.createRecords(BATCH, [{ jobId: id(1), input: 'https://img.test/1.png', model: MODEL, factor: '2', line: 1, meta: { Notiz: 'Käse, würzig' } }]);
    const chunks = async (bom: boolean) => {
      const bytes: Buffer[] = [];
      const out = new Writable({ write: (c: Buffer, _e, done) => (bytes.push(Buffer.from(c)), done()) });
      await exportBatch(rt.store, BATCH, { format: 'csv', out, bom });
      return Buffer.concat(bytes);
    };
    const withBom = await chunks(true);
    expect([...withBom.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    expect(withBom.subarray(3).toString('utf8').startsWith(csvColumns(['Notiz']).join(','))).toBe(true);
    expect(withBom.toString('utf8')).toContain('"Käse, würzig"');
    const plain = await chunks(false);
    expect(plain.subarray(0, 5).toString('utf8')).toBe('jobId');
    await expect(exportBatch(rt.store, BATCH, { format: 'jsonl', out: new SlowSink(), bom: true })).rejects.toThrow(/for CSV exports only/);
  });
});
