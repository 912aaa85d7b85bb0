/**
 * OUTPUT_NAME at enqueue: unknown fields, path traversal, empty columns and names two images would share are
 * refused with their line numbers (the valid lines are enqueued); the template is pinned on the batch; a bad
 * template refuses the whole input before anything is stored.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { enqueue, enqueueFile, InputError } from '../../src/producer/index.js';
import { imageJobId } from '../../src/queue/identity.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { deletePrefix, freshPrefix, testRedisUrl } from '../helpers/redis.js';

const TOPAZ = 'topaz/image-upscale';
let rt: Runtime;
let prefix: string;
let dir: string;

function runtime(env: Record<string, string> = {}): Runtime {
  prefix = freshPrefix('names');
  rt = createRuntime(loadConfig({}, { REDIS_URL: testRedisUrl(), UPSCALE_PREFIX: prefix, LOG_LEVEL: 'silent', ...env }));
  return rt;
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'names-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  await rt?.close();
  await deletePrefix(testRedisUrl(), prefix);
});

describe('OUTPUT_NAME checked at enqueue', () => {
  it('{sku}-{w}x{h}.jpg: a shared name, an empty sku, a climbing sku and a missing column are refused by line', async () => {
    runtime({ OUTPUT_NAME: '{sku}-{w}x{h}.jpg' });
    const csv = file(
      'catalogue.csv',
      [
        'url,sku,colour',
        'https://img.example.com/a.jpg,SKU-1,red', // 2 ok
        'https://img.example.com/b.jpg,SKU-2,blue', // 3 ok
        'https://img.example.com/c.jpg,SKU-1,green', // 4 same name as line 2
        'https://img.example.com/d.jpg,,white', // 5 empty sku
        'https://img.example.com/e.jpg,../../etc/passwd,black', // 6 path traversal
        'https://img.example.com/f.jpg,sku-2,grey', // 7 differs from line 3 only by case
        'https://img.example.com/g.jpg,A/B 7,pink', // 8 ok: "/" and " " become "_"
      ].join('\n'),
    );
    const result = await enqueueFile(rt, csv, { model: TOPAZ, batchId: 'cat' });
    expect(result.enqueued).toBe(3);
    expect(result.rejected.map((r) => [r.line, r.reason])).toEqual([
      [4, expect.stringMatching(/^output name "SKU-1-\{width\}x\{height\}\.jpg" is also line 2's/)],
      [5, expect.stringMatching(/^OUTPUT_NAME uses \{sku\}: .* this line has no "sku" value \(no such column, or it is empty\)$/)],
      [6, expect.stringMatching(/^\{sku\} is "\.\.\/\.\.\/etc\/passwd" on this line: "\.\." would climb out of OUTPUT_URL \(path traversal\)/)],
      [7, expect.stringMatching(/^output name "sku-2-\{width\}x\{height\}\.jpg" is also line 3's/)],
    ]);
    const jobId = imageJobId('cat', TOPAZ, '2', 'https://img.example.com/a.jpg');
    expect(await rt.store.getRecord('cat', jobId)).toMatchObject({ line: 2, meta: { sku: 'SKU-1', colour: 'red' } });
    expect((await rt.queues.submit.getJob(jobId))!.data.meta).toEqual({ sku: 'SKU-1', colour: 'red' });

    // A later enqueue into the batch is checked against the names it already has; the same image again is fine.
    const more = file('more.jsonl', ['{"url":"https://img.example.com/h.jpg","sku":"SKU-2"}', '{"url":"https://img.example.com/a.jpg","sku":"SKU-1"}', '{"url":"https://img.example.com/i.jpg"}'].join('\n'));
    const second = await enqueueFile(rt, more, { model: TOPAZ, batchId: 'cat' });
    expect(second).toMatchObject({ enqueued: 0, duplicates: 1 });
    expect(second.rejected.map((r) => [r.line, r.reason])).toEqual([
      [1, expect.stringMatching(/is also line 3's/)],
      [3, expect.stringMatching(/^OUTPUT_NAME uses \{sku\}: not a built-in field \(.*\) and this line has no "sku" value \(no such column, or it is empty\)$/)],
    ]);
  });

  it('a field no line has is refused on every line, with its line number', async () => {
    runtime({ OUTPUT_NAME: '{batchId}/{sku}.{ext}' });
    const txt = file('urls.txt', 'https://img.example.com/1.png\n\nhttps://img.example.com/2.png\n');
    const result = await enqueueFile(rt, txt, { model: TOPAZ, batchId: 'txt' });
    expect(result.enqueued).toBe(0);
    expect(result.rejected.map((r) => r.line)).toEqual([1, 3]);
    expect(result.rejected[0]!.reason).toMatch(/\{sku\}: not a built-in field .* no "sku" value/);
  });

  it('templates with {jobId} never collide; {line} refuses the same line number from a second file', async () => {
    runtime({ OUTPUT_NAME: 'shots/{line}-{name}.{ext}' });
    const a = await enqueue(rt, [{ input: 'https://img.example.com/x/p.png', line: 7 }, { input: 'https://img.example.com/y/p.png', line: 8 }], { model: TOPAZ, batchId: 'ln' });
    expect(a).toMatchObject({ enqueued: 2, rejected: [] });
    const b = await enqueue(rt, [{ input: 'https://img.example.com/z/p.png', line: 7 }], { model: TOPAZ, batchId: 'ln' });
    expect(b.rejected).toEqual([{ line: 7, input: 'https://img.example.com/z/p.png', reason: expect.stringMatching(/"shots\/7-p\.\{ext\}" is also line 7's/) }]);
    const c = await enqueue(rt, [{ input: 'https://img.example.com/x/p.png' }, { input: 'https://img.example.com/y/p.png' }], { model: TOPAZ, batchId: 'j', outputName: '{jobId}.{ext}' });
    expect(c).toMatchObject({ enqueued: 2, rejected: [] });
    expect(await rt.redis.exists(rt.store.keys.outputNames('j'))).toBe(0);
  });

  it('the template is pinned on the batch: another one is refused before anything is stored', async () => {
    runtime();
    await enqueue(rt, [{ input: 'https://img.example.com/1.png' }], { model: TOPAZ, batchId: 'pin' });
    expect(await rt.store.getOutputName('pin')).toBe('{batchId}/{jobId}-{name}.{ext}');
    const err = await enqueue(rt, [{ input: 'https://img.example.com/2.png' }], { model: TOPAZ, batchId: 'pin', outputName: '{name}.{ext}' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toMatch(/batch pin names its results by OUTPUT_NAME "\{batchId\}\/\{jobId\}-\{name\}\.\{ext\}" \(set when it was first enqueued\), not "\{name\}\.\{ext\}"/);
    expect((await rt.store.getSummary('pin'))!.total).toBe(1);
  });

  it.each([
    ['../{name}.{ext}', /has a "\.\." folder \(path traversal\)/],
    ['/abs/{name}.{ext}', /starts with "\/"/],
    ['{name', /unmatched "\{"/],
    ['a//{name}', /empty folder name/],
    ['{}.png', /empty field/],
  ])('a bad template %j refuses the whole input', async (outputName, reason) => {
    runtime();
    const err = await enqueue(rt, [{ input: 'https://img.example.com/1.png' }], { model: TOPAZ, batchId: 'bad', outputName }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toMatch(reason);
    expect(await rt.store.batchExists('bad')).toBe(false);
  });
});
