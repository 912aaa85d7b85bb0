import {
  chmodSync,
  constants,
  accessSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  writeFileSync,
  existsSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPrivateAddress, literalHostPolicy } from '../../src/producer/address-policy.js';
import { checkEnqueueOptions } from '../../src/producer/enqueue.js';
import {
  checkInput,
  validateLine,
  type ValidateContext,
  type Validation,
} from '../../src/producer/validate.js';

const PRIVATE = 'resolves to a private address; set ALLOW_PRIVATE_URLS=true to allow';

describe('address policy', () => {
  it.each([
    '127.0.0.1',
    '127.255.0.9',
    '10.1.2.3',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '0.0.0.0',
    '::1',
    '[::1]',
    '::',
    'fc00::1',
    'fd12:3456::1',
    'fe80::1',
    'febf::1',
    '::ffff:127.0.0.1',
    '::ffff:a00:1',
  ])('%s is private', (ip) => expect(isPrivateAddress(ip)).toBe(true));

  it.each([
    '8.8.8.8',
    '172.32.0.1',
    '172.15.255.255',
    '192.169.0.1',
    '2606:4700::1',
    'fec0::1',
    '::ffff:8.8.8.8',
    'example.com',
    '',
  ])('%s is not private', (ip) => expect(isPrivateAddress(ip)).toBe(false));

  it('checks literal hosts of URLs, including numeric forms and localhost', () => {
    for (const url of [
      'http://127.0.0.1/a',
      'http://2130706433/a',
      'http://0x7f.1/a',
      'https://[::1]:8443/a',
      'http://localhost/a',
      'http://LOCALHOST./a',
      'http://img.localhost/a',
      'http://0/a',
    ]) {
      expect(literalHostPolicy(url, false), url).toMatch(PRIVATE);
      expect(literalHostPolicy(url, true), url).toBeNull();
    }
    expect(literalHostPolicy('https://images.example.com/a.png', false)).toBeNull();
    expect(literalHostPolicy(new URL('http://192.168.0.10/x'), false)).toBe(`host 192.168.0.10 ${PRIVATE}`);
  });
});

describe('input checks', () => {
  const check = (input: string, allowPrivate = false) => checkInput(input, '/base', allowPrivate);

  it('accepts http(s) URLs as given and resolves local paths against the cwd', () => {
    expect(check('https://a.example/x.png?q=1#f')).toEqual({
      kind: 'url',
      input: 'https://a.example/x.png?q=1#f',
    });
    expect(check('HTTP://a.example/x.png')).toEqual({ kind: 'url', input: 'HTTP://a.example/x.png' });
    expect(check('img/x.png')).toEqual({ kind: 'path', path: '/base/img/x.png' });
    expect(check('/abs/x.png')).toEqual({ kind: 'path', path: '/abs/x.png' });
    expect(check('file:///abs/x%20y.png')).toEqual({ kind: 'path', path: '/abs/x y.png' });
  });

  it.each([
    ['ftp://files.example/x.png', 'unsupported scheme "ftp:"; use an http(s) URL or a local file path'],
    ['javascript:alert(1)', 'unsupported scheme "javascript:"; use an http(s) URL or a local file path'],
    ['data:image/png;base64,AAAA', 'unsupported scheme "data:"; use an http(s) URL or a local file path'],
    ['//cdn.example/x.png', 'relative URL without a scheme; write it as https://cdn.example/x.png'],
    ['https://exa mple.com/x.png', 'the host "exa mple.com" holds a space, which no host name can'],
    ['http://', 'the URL has no host'],
    [
      'file://server/share/x.png',
      'file URL is not a local path (File URL host must be "localhost" or empty on linux)',
    ],
    ['http://10.0.0.5/x.png', `host 10.0.0.5 ${PRIVATE}`],
    ['', 'empty input'],
    ['https://a/\u0000', 'not text: contains NUL bytes'],
  ])('%j is rejected: %s', (input, reason) => {
    expect(check(input)).toEqual({ kind: 'bad', reason });
  });
});

describe('validateLine', () => {
  let dir: string;
  const ctx = (over: Partial<ValidateContext> = {}): ValidateContext => ({
    cwd: dir,
    allowPrivateUrls: false,
    defaultModel: 'topaz/image-upscale',
    ...over,
  });
  const reason = async (v: Validation | Promise<Validation>) => {
    const r = await v;
    return r.ok ? null : r.rejection.reason;
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'producer-validate-'));
    writeFileSync(join(dir, 'a.png'), 'png');
    mkdirSync(join(dir, 'folder'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('resolves model and factor: line values override defaults, the default factor skips models without one', async () => {
    expect(await validateLine({ line: 1, input: 'https://a/x' }, ctx({ defaultFactor: 4 }))).toEqual({
      ok: true,
      image: { line: 1, input: 'https://a/x', model: 'topaz/image-upscale', factor: '4' },
    });
    const recraft = await validateLine(
      { line: 2, input: 'https://a/x', model: 'recraft/crisp-upscale' },
      ctx({ defaultFactor: 4 }),
    );
    expect(recraft).toMatchObject({ ok: true, image: { model: 'recraft/crisp-upscale', factor: null } });
    const own = await validateLine(
      { line: 3, input: 'https://a/x', factor: '8.0' },
      ctx({ defaultFactor: 4 }),
    );
    expect(own).toMatchObject({ ok: true, image: { factor: '8' } });
  });

  it('names the registry reason for bad models and factors', async () => {
    expect(await reason(validateLine({ line: 1, input: 'https://a/x', factor: 3 }, ctx()))).toBe(
      'factor 3 is not one of 1, 2, 4, 8 for topaz/image-upscale',
    );
    expect(
      await reason(
        validateLine({ line: 1, input: 'https://a/x', model: 'recraft/crisp-upscale', factor: 2 }, ctx()),
      ),
    ).toBe('recraft/crisp-upscale takes no factor (got 2)');
    expect(await reason(validateLine({ line: 1, input: 'https://a/x', model: 'dall-e' }, ctx()))).toMatch(
      /^unknown model "dall-e"/,
    );
    expect(
      await reason(validateLine({ line: 1, input: 'https://a/x' }, ctx({ defaultModel: undefined }))),
    ).toMatch(/^no model given/);
  });

  it('checks local files: stored as absolute paths; missing, directories and non-files rejected', async () => {
    expect(await validateLine({ line: 1, input: 'a.png' }, ctx())).toMatchObject({
      ok: true,
      image: { input: join(dir, 'a.png') },
    });
    expect(
      await validateLine({ line: 1, input: pathToFileURL(join(dir, 'a.png')).href }, ctx()),
    ).toMatchObject({
      ok: true,
      image: { input: join(dir, 'a.png') },
    });
    expect(await reason(validateLine({ line: 1, input: 'missing.png' }, ctx()))).toBe(
      `no such file: ${join(dir, 'missing.png')} (a URL needs http:// or https://)`,
    );
    expect(await reason(validateLine({ line: 1, input: 'folder' }, ctx()))).toBe(
      `${join(dir, 'folder')} is a directory`,
    );
    expect(await reason(validateLine({ line: 1, input: '/dev/null' }, ctx()))).toBe(
      '/dev/null is not a regular file',
    );
  });

  // As root, access() succeeds on a chmod 000 file. /proc/sys files with mode 0200 stay unreadable even for root
  // (procfs checks the mode itself), so they stand in for an unreadable file there.
  const unreadable = (() => {
    if (process.getuid?.() !== 0) return 'chmod';
    const candidate = '/proc/sys/vm/drop_caches';
    try {
      if (!existsSync(candidate)) return null;
      accessSync(candidate, constants.R_OK);
      return null;
    } catch {
      return candidate;
    }
  })();

  it.skipIf(unreadable === null)(
    'rejects a file it cannot read (skipped as root without a write-only /proc/sys file)',
    async () => {
      let path = unreadable as string;
      if (unreadable === 'chmod') {
        path = join(dir, 'secret.png');
        writeFileSync(path, 'png');
        chmodSync(path, 0o000);
      }
      expect(await reason(validateLine({ line: 1, input: path }, ctx()))).toBe(
        `${path} is not readable (EACCES)`,
      );
    },
  );

  it('passes parse rejections through and escapes and shortens the input shown', async () => {
    const r = await validateLine(
      { line: 7, input: `a\u0001${'b'.repeat(300)}`, reason: 'invalid JSON: x' },
      ctx(),
    );
    expect(r).toEqual({
      ok: false,
      rejection: { line: 7, input: `a\\x01${'b'.repeat(198)}…`, reason: 'invalid JSON: x' },
    });
  });
});

describe('checkEnqueueOptions', () => {
  it('checks the batch id, chunk size, default model and factor up front', () => {
    expect(checkEnqueueOptions({ batchId: 'b1' })).toMatchObject({ batchId: 'b1', chunkSize: 1000, template: { source: '{batchId}/{jobId}-{name}.{ext}' } });
    expect(checkEnqueueOptions().batchId).toMatch(/^b\d{8}-\d{6}-[0-9a-f]{4}$/);
    expect(() => checkEnqueueOptions({ batchId: 'no spaces' })).toThrow(/batch id "no spaces" must be/);
    expect(() => checkEnqueueOptions({ chunkSize: 0 })).toThrow(/chunk size 0/);
    expect(() => checkEnqueueOptions({ model: 'x' })).toThrow(/^model: unknown model "x"/);
    expect(() => checkEnqueueOptions({ model: 'recraft/crisp-upscale', factor: 2 })).toThrow(
      'factor: recraft/crisp-upscale takes no factor (got 2)',
    );
    expect(() => checkEnqueueOptions({ model: 'topaz/image-upscale', factor: 3 })).toThrow('factor: factor 3 is not one of 1, 2, 4, 8 for topaz/image-upscale');
    expect(() => checkEnqueueOptions({ factor: 3 })).toThrow(
      'factor: 3 is not a factor any model takes (topaz/image-upscale takes 1, 2, 4, 8; recraft/crisp-upscale takes none)',
    );
    expect(() => checkEnqueueOptions({ factor: '4' })).not.toThrow();
  });
});
