import { Writable } from 'node:stream';
import { parse } from 'csv-parse/sync';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { csvColumns, exportBatch, UnknownBatchError } from '../../src/results/export.js';
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

  it('writes JSONL with exactly the record fields in order, across several HSCAN pages, honouring backpressure', async () => {
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

  it('rejects an unknown batch before writing anything', async () => {
    await seed();
    const out = new SlowSink();
    await expect(exportBatch(rt.store, 'missing', { out })).rejects.toThrow(UnknownBatchError);
    await expect(exportBatch(rt.store, 'missing', { out })).rejects.toThrow('no batch named missing');
    expect(out.chunks).toEqual([]);
  });
});
