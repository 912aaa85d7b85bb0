import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigError} from '../../src/config/index.js';
import { loadConfig, parseOutputUrl, redactUserinfo, shownValue } from '../../src/config/index.js';
import { FileStorage, StorageError, nthResultName, parseNameTemplate, renderName, type NameValues } from '../../src/storage/index.js';

const base: NameValues = {
  batchId: 'b1',
  jobId: '0123456789abcdef01234567',
  line: 12,
  input: 'https://cdn.example.com/shop/Red%20Shoe.final.JPG?sig=1',
  model: 'topaz/image-upscale',
  factor: '4',
  meta: { SKU: 'A-12', colour: 'red' },
  ext: 'jpg',
  width: 2048,
  height: 1536,
};
const name = (t: string, v: Partial<NameValues> = {}) => renderName(parseNameTemplate(t), { ...base, ...v });

describe('OUTPUT_NAME templates', () => {
  it('the default is the OUTPUT_DIR layout, an empty {name} dropping its "-"', () => {
    expect(name('{batchId}/{jobId}-{name}.{ext}')).toEqual({ ok: true, name: 'b1/0123456789abcdef01234567-Red_Shoe.final.jpg' });
    expect(name('{batchId}/{jobId}-{name}.{ext}', { input: 'https://cdn.example.com/', ext: 'png' })).toEqual({ ok: true, name: 'b1/0123456789abcdef01234567.png' });
    expect(name('{batchId}/{jobId}-{name}.{ext}', { input: '/data/in/.hidden.png' })).toMatchObject({ name: 'b1/0123456789abcdef01234567-hidden.jpg' });
  });

  it('renders every field: {sku}-{w}x{h}.jpg, model, factor, line, case-insensitive columns', () => {
    expect(name('{sku}-{w}x{h}.jpg')).toEqual({ ok: true, name: 'A-12-2048x1536.jpg' });
    expect(name('{model}/x{factor}/{line}-{colour}.{ext}')).toMatchObject({ name: 'topaz-image-upscale/x4/12-red.jpg' });
    expect(name('{model}-{factor}.{ext}', { model: 'recraft/crisp-upscale', factor: null })).toMatchObject({ name: 'recraft-crisp-upscale-2.jpg' });
    expect(name('{width}x{height}/{SKU}.{ext}', { meta: { SKU: 'a b/c' } })).toMatchObject({ name: '2048x1536/a_b_c.jpg' });
  });

  it('refuses lines whose names cannot be made, saying why', () => {
    expect(name('{sku}.{ext}', { meta: {} })).toMatchObject({ ok: false, reason: expect.stringMatching(/\{sku\}: not a built-in field .* no "sku" value/) });
    expect(name('{sku}.{ext}', { meta: { sku: '  ' } })).toMatchObject({ ok: false, reason: 'OUTPUT_NAME uses {sku}, which is empty on this line' });
    expect(name('{sku}.{ext}', { meta: { sku: 'x/../../y' } })).toMatchObject({ ok: false, reason: expect.stringMatching(/path traversal/) });
    expect(name('{sku}/{ext}', { meta: { sku: '...' } })).toMatchObject({ ok: false, reason: expect.stringMatching(/^\{sku\} is "\.\.\." on this line: nothing of it is usable/) });
    expect(name('{sku}.{ext}', { meta: { sku: 'x'.repeat(300) } })).toMatchObject({ ok: true }); // values are cut to 80 characters
    const long = '{colour}-{name}-{sku}-{jobId}-{batchId}/'.repeat(10) + '{name}';
    expect(name(long, { meta: { colour: 'c'.repeat(80), sku: 's'.repeat(80) } })).toMatchObject({ ok: false, reason: expect.stringMatching(/over 900 bytes/) });
    const { ext: _ext, ...unknownExt } = base;
    expect(renderName(parseNameTemplate('{name}.{ext}'), unknownExt)).toMatchObject({ ok: false });
    expect(renderName(parseNameTemplate('{name}.{ext}'), unknownExt, { placeholders: true })).toMatchObject({ ok: true });
  });

  it.each([
    ['', /is empty/],
    ['../{name}', /"\.\." folder \(path traversal\)/],
    ['a/./{name}', /"\." folder/],
    ['/{name}', /starts with "\/"/],
    ['{name}/', /ends with "\/"/],
    ['a\\{name}', /contains "\\"/],
    ['{name}}', /unmatched "\}"/],
    ['{na{me}', /unmatched "\{"/],
  ])('refuses the template %j', (t, reason) => expect(() => parseNameTemplate(t)).toThrow(reason));

  it.each([
    ['{batchId}/a?b#c {sku}.{ext}', '"?" "#" " "'],
    ['{batchId}/é*<>|:"{sku}.{ext}', '"é" "*" "<" ">" "|" ":" "\\""'],
    ['..%2f{sku}', '"%"'],
  ])('refuses literal text outside the safe set in %j once, when the template is read', (t, listed) => {
    expect(() => parseNameTemplate(t)).toThrow(`OUTPUT_NAME "${t}" has ${listed} in its literal text (allowed: ASCII letters and digits, "-", "_", ".", "=" and "/" for folders)`);
  });

  it('accepts the safe literal characters, and an exit-2 config error names the template', () => {
    expect(parseNameTemplate('shop=eu/{sku}_v-2.{ext}').source).toBe('shop=eu/{sku}_v-2.{ext}');
    expect(() => loadConfig({}, { OUTPUT_DIR: '/tmp/out', OUTPUT_NAME: '{batchId}/a?b#c {sku}.{ext}' })).toThrow(/OUTPUT_NAME.*"\?" "#" " " in its literal text/);
  });

  it('a value of "..." says what is wrong with it, not that it is empty', () => {
    expect(name('{batchId}/{sku}.{ext}', { meta: { sku: '...' } })).toEqual({
      ok: false,
      reason: '{sku} is "..." on this line: nothing of it is usable in a name (leading dots are dropped; other characters than letters, digits, "_", "." and "-" become "_")',
    });
    expect(name('{batchId}/{sku}.{ext}', { meta: { sku: '  ' } })).toMatchObject({ ok: false, reason: expect.stringMatching(/empty on this line/) });
  });

  it('refuses "{batchId}/results.jsonl" and "{batchId}/summary.json" as templates, not line by line', () => {
    expect(() => parseNameTemplate('{batchId}/results.jsonl')).toThrow(`OUTPUT_NAME "{batchId}/results.jsonl" names every image "{batchId}/results.jsonl", the batch's own results.jsonl (written when the batch finishes)`);
    expect(() => parseNameTemplate('{batchId}/Summary.JSON')).toThrow(/the batch's own summary\.json/);
    // Only the template decides these; a column that might spell it is still checked per line.
    expect(parseNameTemplate('{batchId}/{sku}.jsonl').source).toBe('{batchId}/{sku}.jsonl');
  });

  it("refuses the tool's own names: a part starting with '.', the batch's results.jsonl and summary.json", () => {
    expect(() => parseNameTemplate('{batchId}/.thumbs/{jobId}.{ext}')).toThrow(/name starting with "\." \("\.thumbs"/);
    // A part that starts with "." only once rendered: an empty {line} before ".{ext}".
    expect(name('{line}.{ext}', { line: null })).toMatchObject({ ok: false, reason: expect.stringMatching(/part starting with "\."/) });
    expect(name('{batchId}/{sku}', { meta: { sku: 'summary.json' } })).toMatchObject({
      ok: false,
      reason: 'the output name "b1/summary.json" is the batch\'s own summary.json (written when the batch finishes)',
    });
    expect(name('{batchId}/{sku}.jsonl', { meta: { sku: 'RESULTS' } })).toMatchObject({ ok: false, reason: expect.stringMatching(/batch's own results\.jsonl/) });
    // The same file name outside the batch's folder is not the finalizer's.
    expect(name('{sku}/summary.json', { meta: { sku: 'x' } })).toMatchObject({ ok: true, name: 'x/summary.json' });
  });

  it('knows when names cannot collide, and numbers the later results of a task', () => {
    expect(parseNameTemplate('{batchId}/{jobId}.{ext}').canCollide).toBe(false);
    expect(parseNameTemplate('{sku}.{ext}').canCollide).toBe(true);
    expect(parseNameTemplate('{sku}-{w}.{ext}').metaFields).toEqual(['sku']);
    expect(nthResultName('a/b.c.png', 0)).toBe('a/b.c.png');
    expect(nthResultName('a/b.c.png', 1)).toBe('a/b.c-2.png');
    expect(nthResultName('a.b/noext', 2)).toBe('a.b/noext-3');
  });
});

describe('OUTPUT_URL and the S3 variables', () => {
  it('reads file and s3 locations; OUTPUT_DIR is a file location', () => {
    expect(parseOutputUrl('file:///srv/out/')).toEqual({ kind: 'file', dir: '/srv/out', url: 'file:///srv/out' });
    expect(parseOutputUrl('s3://my-bucket/team/upscaled/')).toEqual({ kind: 's3', bucket: 'my-bucket', prefix: 'team/upscaled', url: 's3://my-bucket/team/upscaled' });
    expect(parseOutputUrl('s3://my-bucket')).toMatchObject({ prefix: '', url: 's3://my-bucket' });
    const c = loadConfig({}, { OUTPUT_DIR: '/tmp/out' });
    expect(c).toMatchObject({ output: { kind: 'file', dir: '/tmp/out' }, outputDir: '/tmp/out', outputName: '{batchId}/{jobId}-{name}.{ext}' });
    const s3 = loadConfig({}, { OUTPUT_URL: 's3://b-1/p', S3_ENDPOINT: 'http://127.0.0.1:9000/', S3_FORCE_PATH_STYLE: 'true' });
    expect(s3).toMatchObject({ output: { kind: 's3', bucket: 'b-1', prefix: 'p' }, outputDir: undefined, s3: { endpoint: 'http://127.0.0.1:9000', region: 'us-east-1', forcePathStyle: true } });
    expect(loadConfig({}).output).toBeUndefined();
  });

  it('lists every bad output variable at once, never echoing credentials back as accepted', () => {
    let err: ConfigError | undefined;
    try {
      loadConfig({}, { OUTPUT_URL: 's3://AKIA:secret@bucket/x', OUTPUT_DIR: '/a', OUTPUT_NAME: '../{name}', S3_ENDPOINT: 'http://u:p@minio:9000', S3_REGION: 'EU West' });
    } catch (e) {
      err = e as ConfigError;
    }
    const keys = err!.problems.map((p) => p.split(':')[0]);
    expect(keys.sort()).toEqual(['OUTPUT_NAME', 'OUTPUT_URL', 'S3_ENDPOINT', 'S3_REGION']);
    expect(err!.message).toMatch(/OUTPUT_URL: .*must not hold credentials/);
    // The trial's exact inputs: the secret part is never printed, the rest of the value still is.
    expect(err!.message).toContain('OUTPUT_URL: "s3://***@bucket/x" must not hold credentials');
    expect(err!.message).toContain('S3_ENDPOINT: "http://***@minio:9000" must not hold credentials');
    for (const leaked of ['AKIA', 'secret', 'u:p']) expect(err!.message).not.toContain(leaked);
    // The same for any URL variable (REDIS_URL...), and a secret variable's value is never shown.
    expect(redactUserinfo('redis://:hunter2@r:6379 and s3://k:s@b')).toBe('redis://***@r:6379 and s3://***@b');
    expect(shownValue('KIE_API_KEY', 'sk-live-123')).toBe('(hidden)');
    expect(shownValue('S3_REGION', 'EU West')).toBe('EU West');
    expect(() => loadConfig({}, { OUTPUT_URL: 'file:///a', OUTPUT_DIR: '/b' })).toThrow(/OUTPUT_DIR \/ OUTPUT_URL: set one of them/);
    expect(() => loadConfig({}, { OUTPUT_URL: 'file:///a', OUTPUT_DIR: '/a' })).not.toThrow();
    for (const bad of ['s3://Upper/x', 's3://b/../x', 'gs://b/x', 'file://host/x', 's3://bucket/x?y=1']) {
      expect(() => parseOutputUrl(bad), bad).toThrow();
    }
  });
});

describe('relative OUTPUT_DIR', () => {
  it('is resolved against the working directory (documented), so the location is always absolute', () => {
    const c = loadConfig({}, { OUTPUT_DIR: 'output/results' });
    expect(c.outputDir).toBe(join(process.cwd(), 'output/results'));
    expect(c.output).toMatchObject({ kind: 'file', url: `file://${join(process.cwd(), 'output/results')}` });
  });
});

describe('file storage', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'file-storage-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('writes atomically under the folder, checks the sha256, and never leaves it', async () => {
    const st = new FileStorage(dir);
    const stored = await st.put('b/x y.txt', Readable.from(['hello']), { sha256: '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824' });
    expect(stored).toMatchObject({ key: 'b/x y.txt', path: join(dir, 'b/x y.txt'), size: 5 });
    expect(await readFile(join(dir, 'b/x y.txt'), 'utf8')).toBe('hello');
    expect(st.keyOf(stored.url)).toBe('b/x y.txt');
    expect(st.keyOf('file:///elsewhere/b/x')).toBeNull();
    expect(await st.head('b/x y.txt')).toMatchObject({ sha256: stored.sha256, size: 5 });
    expect(await st.head('b/none')).toBeNull();
    await expect(st.put('b/bad.txt', Readable.from(['other']), { sha256: stored.sha256! })).rejects.toThrow(StorageError);
    expect((await readdir(join(dir, 'b'))).sort()).toEqual(['x y.txt']); // no temp file, no bad.txt
    for (const key of ['../escape', 'a/../../escape', '', 'a//b']) expect(() => st.pathOf(key), key).toThrow(/not a valid object name/);
  });
});
