/** Smoke tests of `upscale export` as a separate process, against real Redis. */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { csvColumns } from '../../src/results/export.js';
import { RECORD_FIELDS } from '../../src/results/record.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { deletePrefix, freshPrefix, testRedisUrl } from '../helpers/redis.js';
import { runUpscale } from '../helpers/processes.js';

const BATCH = 'b-export-cli';
const id = (n: number) => n.toString(16).padStart(24, '0');

const runCli = (args: string[], env: Record<string, string>) => runUpscale(args, { LOG_LEVEL: 'silent', ...env });

// Each run starts a Node process (about 3 s of imports); allow for a loaded machine.
describe('upscale export (CLI)', { timeout: 180_000 }, () => {
  let rt: Runtime;
  let prefix: string;
  let env: Record<string, string>;
  let dir: string;

  beforeAll(async () => {
    prefix = freshPrefix('expcli');
    env = { REDIS_URL: testRedisUrl(), UPSCALE_PREFIX: prefix };
    dir = mkdtempSync(join(tmpdir(), 'upscale-export-'));
    rt = createRuntime(loadConfig({}, { ...env, LOG_LEVEL: 'silent' }));
    const images = [3, 1, 2].map((n) => ({ jobId: id(10 - n), input: `https://img.test/${n}.png`, model: 'recraft/crisp-upscale' as const, factor: null, line: n }));
    await rt.store.createRecords(BATCH, images);
    await rt.store.transition(BATCH, id(9), { state: 'failed', failCode: '500', failMsg: 'a, "b"\nc' });
  });
  afterAll(async () => {
    await rt.close();
    await deletePrefix(testRedisUrl(), prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes JSONL to standard output and CSV to a file, through FILE.tmp', async () => {
    const file = join(dir, 'out.csv');
    const excel = join(dir, 'excel.csv');
    const [jsonl, csv, bom, badBom] = await Promise.all([
      runCli(['export', '--batch', BATCH], env),
      runCli(['export', '--batch', BATCH, '--format', 'csv', '--out', file], env),
      runCli(['export', '--batch', BATCH, '--format', 'csv', '--bom', '--out', excel], env),
      runCli(['export', '--batch', BATCH, '--bom'], env),
    ]);
    expect(bom.code).toBe(0);
    expect([...readFileSync(excel).subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    expect(readFileSync(excel).subarray(3).equals(readFileSync(file))).toBe(true);
    expect(badBom.code).toBe(2);
    expect(badBom.stderr).toContain('--bom is for --format csv');
    expect(jsonl.code).toBe(0);
    const lines = jsonl.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(3);
    expect(Object.keys(lines[0]!)).toEqual(RECORD_FIELDS);
    expect(lines.map((l) => l.line)).toEqual([1, 2, 3]); // by line

    expect(csv.code).toBe(0);
    expect(csv.stdout).toBe('');
    expect(csv.stderr).toContain(`Exported 3 records of batch ${BATCH} to ${file}`);
    const text = readFileSync(file, 'utf8');
    expect(text.split('\r\n')[0]).toBe(csvColumns().join(','));
    expect(text).toContain('"a, ""b""\nc"');
    expect(existsSync(`${file}.tmp`)).toBe(false);
  });

  it('exits 1 for an unknown batch without creating the file', async () => {
    const file = join(dir, 'never.jsonl');
    const unknown = await runCli(['export', '--batch', 'nope', '--out', file], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no batch named nope (run `upscale status` to list batches)');
    expect(existsSync(file) || existsSync(`${file}.tmp`)).toBe(false);
  });
});
