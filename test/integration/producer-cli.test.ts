import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { register } from '../../src/cli/commands/enqueue.js';
import { UsageError } from '../../src/cli/usage-error.js';
import { loadConfig } from '../../src/config/index.js';
import { imageJobId } from '../../src/queue/identity.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { deletePrefix, freshPrefix, testRedisUrl } from '../helpers/redis.js';
import { runUpscale } from '../helpers/processes.js';

const TOPAZ = 'topaz/image-upscale';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

let prefix: string;
let dir: string;

/** Runs `upscale enqueue ...` as a user would, against the test Redis under a fresh prefix. */
function upscale(args: string[], stdin?: string): Promise<Run> {
  return runUpscale(['enqueue', ...args], { REDIS_URL: testRedisUrl(), UPSCALE_PREFIX: prefix, LOG_LEVEL: 'silent', ALLOW_PRIVATE_URLS: '' }, stdin ?? '');
}

async function withRuntime<T>(fn: (rt: Runtime) => Promise<T>): Promise<T> {
  const rt = createRuntime(
    loadConfig({}, { REDIS_URL: testRedisUrl(), UPSCALE_PREFIX: prefix, LOG_LEVEL: 'silent' }),
  );
  try {
    return await fn(rt);
  } finally {
    await rt.close();
  }
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'producer-cli-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  await deletePrefix(testRedisUrl(), prefix);
});

describe('upscale enqueue', () => {
  it('--json: exit 0 and exactly { batchId, enqueued, duplicates, rejected, warnings } when every line is accepted', async () => {
    prefix = freshPrefix('cli');
    const run = await upscale([
      'test/fixtures/inputs/images.csv',
      '--model',
      TOPAZ,
      '--factor',
      '2',
      '--batch',
      'cli-1',
      '--json',
    ]);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toStrictEqual({
      batchId: 'cli-1',
      enqueued: 4,
      duplicates: 0,
      rejected: [],
      warnings: [],
    });
    const again = await upscale([
      'test/fixtures/inputs/images.csv',
      '--model',
      TOPAZ,
      '--batch',
      'cli-1',
      '--json',
    ]);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toStrictEqual({
      batchId: 'cli-1',
      enqueued: 0,
      duplicates: 4,
      rejected: [],
      warnings: [],
    });
    expect(await withRuntime((rt) => rt.queues.submit.count())).toBe(4);
  });

  it('--json: exit 1 with the rejections when some lines are bad; the others are enqueued; --url values follow the file', async () => {
    prefix = freshPrefix('cli');
    const file = join(dir, 'mixed.txt');
    writeFileSync(file, 'https://a.example/1.png\nftp://a.example/2.png\n\nhttps://a.example/3.png\n');
    const run = await upscale([
      file,
      '--url',
      'https://a.example/4.png',
      '--url',
      'http://192.168.1.1/5.png',
      '--model',
      TOPAZ,
      '--json',
      '--batch',
      'cli-2',
    ]);
    expect(run.code).toBe(1);
    expect(JSON.parse(run.stdout)).toStrictEqual({
      batchId: 'cli-2',
      enqueued: 3,
      duplicates: 0,
      rejected: [
        {
          line: 2,
          input: 'ftp://a.example/2.png',
          reason: 'unsupported scheme "ftp:"; use an http(s) URL or a local file path',
        },
        {
          line: 6,
          input: 'http://192.168.1.1/5.png',
          reason: 'host 192.168.1.1 resolves to a private address; set ALLOW_PRIVATE_URLS=true to allow',
        },
      ],
      warnings: [],
    });
    const job = await withRuntime((rt) =>
      rt.queues.submit.getJob(imageJobId('cli-2', TOPAZ, '2', 'https://a.example/4.png')),
    );
    expect(job?.data).toMatchObject({ input: 'https://a.example/4.png', batchId: 'cli-2', generation: 0 });
  });

  it('plain output: the batch id alone on stdout, the summary and rejections on stderr; stdin with -', async () => {
    prefix = freshPrefix('cli');
    const run = await upscale(
      ['-', '--model', TOPAZ],
      '{"url":"https://a.example/1.png","factor":4}\n{"url":"https://a.example/2.png","factor":3}\n',
    );
    expect(run.code).toBe(1);
    const batchId = run.stdout.trim();
    expect(run.stdout).toBe(`${batchId}\n`);
    expect(batchId).toMatch(/^b\d{8}-\d{6}-[0-9a-f]{4}$/);
    expect(run.stderr).toBe(
      `batch ${batchId}: 1 enqueued, 0 duplicates, 1 rejected\n` +
        'line 2: https://a.example/2.png: factor 3 is not one of 1, 2, 4, 8 for topaz/image-upscale\n',
    );
  });

  it('nothing enqueued into a new batch: no batch id on stdout, the batch not created; a list naming no model at all is a usage error', async () => {
    prefix = freshPrefix('cli');
    const bad = await upscale(['-', '--format', 'csv'], 'url,model\nhttps://a.example/1.png,nope\n');
    expect(bad.code).toBe(1);
    expect(bad.stdout).toBe('');
    const batchId = /^batch (\S+): /.exec(bad.stderr)?.[1] ?? '';
    expect(bad.stderr).toBe(
      `batch ${batchId}: 0 enqueued, 0 duplicates, 1 rejected; nothing enqueued, so batch ${batchId} was not created\n` +
        'line 2: https://a.example/1.png: unknown model "nope"; use one of topaz/image-upscale, recraft/crisp-upscale\n',
    );
    expect(await withRuntime((rt) => rt.store.getSummary(batchId))).toBeNull();
    const badJson = await upscale(['-', '--format', 'csv', '--json'], 'url,model\nhttps://a.example/1.png,nope\n');
    expect(badJson.code).toBe(1);
    expect(JSON.parse(badJson.stdout)).toMatchObject({ enqueued: 0, duplicates: 0, batchCreated: false });

    // A fresh user's run: a plain list and no --model. Every line refused one by one, and an id printed for no batch.
    const noModel = await upscale(['-'], 'https://a.example/1.png\nhttps://a.example/2.png\n');
    expect(noModel.code).toBe(2);
    expect(noModel.stdout).toBe('');
    expect(noModel.stderr).toBe(
      'upscale: --model is needed: none of the 2 images names its own model (a CSV column or JSONL field `model` can); ' +
        'use --model topaz/image-upscale or --model recraft/crisp-upscale\n',
    );
  });

  it('a usage error exits 2 with a fix-it message', async () => {
    prefix = freshPrefix('cli');
    const none = await upscale(['--model', TOPAZ]);
    expect(none.code).toBe(2);
    expect(none.stdout).toBe('');
    expect(none.stderr).toMatch(/^upscale: nothing to enqueue: give a FILE .* and\/or --url URL/);
  });
});

/** The same command in-process (its own `register` on a fresh program): quicker than a process per case. */
describe('upscale enqueue flags (in-process)', () => {
  let out: string[];
  let err: string[];

  beforeEach(() => {
    prefix = freshPrefix('cli');
    vi.stubEnv('REDIS_URL', testRedisUrl());
    vi.stubEnv('UPSCALE_PREFIX', prefix);
    vi.stubEnv('LOG_LEVEL', 'silent');
    out = [];
    err = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => out.push(String(s)) > 0);
    vi.spyOn(process.stderr, 'write').mockImplementation((s) => err.push(String(s)) > 0);
  });
  afterEach(() => {
    vi.restoreAllMocks();
    vi.unstubAllEnvs();
    process.exitCode = undefined;
  });

  const run = (...args: string[]) => {
    const program = new Command('upscale').exitOverride().configureOutput({ writeErr: (s) => err.push(s) });
    register(program);
    return program.parseAsync(['node', 'upscale', 'enqueue', ...args]);
  };

  it('refuses bad flags before anything is opened or stored', async () => {
    const missing = join(dir, 'missing.txt');
    await expect(run(missing, '--model', TOPAZ)).rejects.toThrow(new UsageError(`${missing}: no such file`));
    await expect(run(dir, '--model', TOPAZ)).rejects.toThrow(
      new UsageError(`${dir}: is a directory, not a file`),
    );
    await expect(
      run('--url', 'https://a.example/1.png', '--model', 'recraft/crisp-upscale', '--factor', '4'),
    ).rejects.toThrow(new UsageError('--factor: recraft/crisp-upscale takes no factor (got 4)'));
    // A factor the model does not offer is the factor's fault, not the model's (a fresh user's run said --model).
    await expect(run('--url', 'https://a.example/1.png', '--model', TOPAZ, '--factor', '3')).rejects.toThrow(
      new UsageError('--factor: factor 3 is not one of 1, 2, 4, 8 for topaz/image-upscale'),
    );
    await expect(run('--url', 'https://a.example/1.png', '--model', 'x')).rejects.toThrow(
      /^--model: unknown model "x"/,
    );
    await expect(run('--url', 'https://a.example/1.png', '--batch', 'a b')).rejects.toThrow(
      /^--batch: batch id "a b"/,
    );
    await expect(run('--url', 'https://a.example/1.png', '--format', 'csv')).rejects.toThrow(
      /--format describes FILE/,
    );
    await expect(run('--url', 'https://a.example/1.png', '--colour', 'red')).rejects.toThrow(CommanderError);
    expect(err.join('')).toMatch(/unknown option '--colour'/);
    await expect(run('a.txt', '--format', 'xml')).rejects.toThrow(CommanderError);
    expect(err.join('')).toMatch(/Allowed choices are txt, csv, jsonl/);
    expect(await withRuntime((rt) => rt.store.listBatches())).toEqual([]);
  });

  it('--encoding windows-1252 reads German Excel\'s ANSI "CSV"; without it the umlaut rows are rejected with their line and the fix', async () => {
    const file = join(dir, 'ansi.csv');
    // "url;Notiz" with "Käse" and "Größe" in Windows-1252 bytes (ä 0xE4, ö 0xF6, ß 0xDF), CRLF.
    writeFileSync(file, Buffer.from('url;Notiz\r\nhttps://a.example/1.png;K\xe4se\r\nhttps://a.example/2.png;plain\r\nhttps://a.example/3.png;Gr\xf6\xdfe\r\n', 'latin1'));
    await run(file, '--model', TOPAZ, '--batch', 'cli-ansi');
    expect(process.exitCode).toBe(1);
    const fix = 'not text: invalid UTF-8 (the file is not UTF-8: re-export it as "CSV UTF-8" or pass --encoding windows-1252)';
    expect(err.join('')).toContain(`line 2: https://a.example/1.png;K\uFFFDse: ${fix}\n`);
    expect(err.join('')).toContain(`line 4: https://a.example/3.png;Gr\uFFFD\uFFFDe: ${fix}\n`);
    process.exitCode = undefined;
    out.length = 0;
    await run(file, '--model', TOPAZ, '--batch', 'cli-ansi-2', '--encoding', 'windows-1252', '--json');
    expect(process.exitCode).toBe(0);
    expect(JSON.parse(out.join(''))).toMatchObject({ enqueued: 3, rejected: [] });
    const meta = await withRuntime(async (rt) => {
      const m: string[] = [];
      for await (const r of rt.store.records('cli-ansi-2')) m.push(r.meta?.Notiz ?? '');
      return m.sort();
    });
    expect(meta).toEqual(['Größe', 'Käse', 'plain']);
    await expect(run(file, '--encoding', 'cp850')).rejects.toThrow(CommanderError);
    expect(err.join('')).toMatch(/Allowed choices are utf-8, utf-16le, utf-16be, windows-1252, latin1/);
    await expect(run('--url', 'https://a.example/1.png', '--encoding', 'latin1')).rejects.toThrow(/--encoding describes FILE/);
  });

  it('an empty file says "no images in FILE" and exits 0', async () => {
    const empty = join(dir, 'empty.txt');
    writeFileSync(empty, '# nothing yet\n');
    await run(empty, '--model', TOPAZ, '--json');
    expect(process.exitCode).toBe(0);
    expect(err.join('')).toBe(`upscale: no images in ${empty}\n`);
    expect(JSON.parse(out.join(''))).toMatchObject({ enqueued: 0, duplicates: 0, rejected: [] });
  });

  it('plain output labels --url rejections by their position', async () => {
    await run(
      '--url',
      'https://a.example/1.png',
      '--url',
      'data:image/png;base64,AA',
      '--model',
      TOPAZ,
      '--batch',
      'cli-3',
    );
    expect(process.exitCode).toBe(1);
    expect(out.join('')).toBe('cli-3\n');
    expect(err.join('')).toBe(
      'batch cli-3: 1 enqueued, 0 duplicates, 1 rejected\n' +
        '--url 2: data:image/png;base64,AA: unsupported scheme "data:"; use an http(s) URL or a local file path\n',
    );
  });
});
