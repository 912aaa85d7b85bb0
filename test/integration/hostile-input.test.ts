/**
 * Hostile input at enqueue, through the real `upscale enqueue --json` command: one mixed CSV file (BOM, CRLF line
 * ends, binary garbage, a 1 MB line, broken quoting, bad schemes, private hosts, bad models and factors, local
 * paths that are missing, a directory, not a regular file, unreadable) and one mixed JSONL file (invalid JSON,
 * wrong types). Every bad line gets its own reason on its own physical line number; every good line of the same
 * file is enqueued untouched. The command runs as an unprivileged user when the tests run as root, so that an
 * unreadable file really is unreadable.
 */
import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import type { SubmitJobData } from '../../src/queue/job-data.js';
import { imageJobId } from '../../src/queue/identity.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { ROOT } from '../helpers/processes.js';
import { makeImage } from '../helpers/images.js';
import { deletePrefix, freshPrefix, testRedisUrl } from '../helpers/redis.js';

const TOPAZ = 'topaz/image-upscale';
const RECRAFT = 'recraft/crisp-upscale';
const PRIVATE = /resolves to a private address; set ALLOW_PRIVATE_URLS=true to allow/;

/** A row of an input file: its bytes, and either the image it must enqueue or the reason it must be refused for. */
type Row = { name: string; bytes: string | Buffer } & ({ ok: { input: string; model: string; factor: string | null } } | { reason: RegExp });

interface Run {
  code: number | null;
  json: { batchId: string; enqueued: number; duplicates: number; rejected: { line: number; input: string; reason: string }[] };
  stderr: string;
}

/** Runs `upscale enqueue FILE --json --batch B`; as `nobody` when the tests run as root. */
function enqueueCli(file: string, batch: string, prefix: string, extra: string[] = []): Promise<Run> {
  const asUser = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/index.ts', 'enqueue', file, '--json', '--batch', batch, ...extra], {
      cwd: ROOT,
      env: { ...process.env, REDIS_URL: testRedisUrl(), UPSCALE_PREFIX: prefix, LOG_LEVEL: 'silent', ALLOW_PRIVATE_URLS: '', FORCE_COLOR: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...asUser,
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      try {
        resolve({ code, json: JSON.parse(out) as Run['json'], stderr: err });
      } catch {
        reject(new Error(`enqueue printed no JSON (exit ${code}): ${out}\n${err}`));
      }
    });
  });
}

let dir: string;
let prefix: string;
let rt: Runtime;
let png: string;

/** Writes `rows` (after `head`) joined by CRLF, checks the command's answer row by row, and the stored jobs. */
async function check(fileName: string, head: string | Buffer, rows: Row[], batch: string, extra: string[] = []) {
  const file = join(dir, fileName);
  const lines = [...(head.length > 0 ? [Buffer.from(head)] : []), ...rows.map((r) => Buffer.from(r.bytes))];
  await writeFile(file, Buffer.concat(lines.flatMap((b, i) => (i === 0 ? [b] : [Buffer.from('\r\n'), b]))));
  const run = await enqueueCli(file, batch, prefix, extra);
  const good = rows.filter((r): r is Row & { ok: { input: string; model: string; factor: string | null } } => 'ok' in r);
  expect(run.code, run.stderr).toBe(1);
  expect(run.json).toMatchObject({ batchId: batch, enqueued: good.length, duplicates: 0 });
  const byLine = new Map(run.json.rejected.map((r) => [r.line, r]));
  const headLines = head.length === 0 ? 0 : 1;
  rows.forEach((row, i) => {
    const line = i + 1 + headLines;
    const got = byLine.get(line);
    if ('reason' in row) expect(got?.reason, `${row.name} (line ${line})`).toMatch(row.reason);
    else expect(got, `${row.name} (line ${line}) must be accepted`).toBeUndefined();
  });
  expect(run.json.rejected).toHaveLength(rows.length - good.length);
  for (const r of run.json.rejected) expect(r.input.length).toBeLessThanOrEqual(201); // shown back, cut short
  for (const row of good) {
    const { input, model, factor } = row.ok;
    const job = await rt.queues.submit.getJob(imageJobId(batch, model as typeof TOPAZ, factor as '2' | null, input));
    expect(job?.data as SubmitJobData | undefined, `${row.name} stored untouched`).toMatchObject({ input, model, factor, batchId: batch });
  }
  return run;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hostile-input-'));
  await chmod(dir, 0o755);
  prefix = freshPrefix('hostile');
  rt = createRuntime(loadConfig({}, { REDIS_URL: testRedisUrl(), UPSCALE_PREFIX: prefix, LOG_LEVEL: 'silent' }));
  png = join(dir, 'ok.png');
  await writeFile(png, await makeImage(40, 30));
  await mkdir(join(dir, 'a-directory.png'));
  await writeFile(join(dir, 'locked.png'), await makeImage(40, 30));
  await chmod(join(dir, 'locked.png'), 0o000);
});

afterAll(async () => {
  await rt?.close();
  await deletePrefix(testRedisUrl(), prefix);
  await rm(dir, { recursive: true, force: true });
});

describe('hostile input through `upscale enqueue --json`', () => {
  it('a mixed CSV file (BOM, CRLF): every bad line has its reason, every good line is enqueued untouched', async () => {
    const x = 'https://img.example.com';
    const rows: Row[] = [
      { name: 'valid topaz ×4', bytes: `${x}/ok-1.png,${TOPAZ},4`, ok: { input: `${x}/ok-1.png`, model: TOPAZ, factor: '4' } },
      { name: 'malformed URL (space in host)', bytes: `https://exa mple.com/x.png,${TOPAZ},2`, reason: /the host "exa mple.com" holds a space, which no host name can/ },
      { name: 'malformed URL (no host)', bytes: `http://,${TOPAZ},2`, reason: /the URL has no host/ },
      { name: 'malformed URL (broken IPv6)', bytes: `https://[::1/x.png,${TOPAZ},2`, reason: /the host "\[::1" is not a valid IPv6 literal/ },
      { name: 'protocol-relative URL', bytes: `//cdn.example.com/x.png,${TOPAZ},2`, reason: /relative URL without a scheme; write it as https:\/\/cdn/ },
      { name: 'relative path that does not exist', bytes: `images/nope.png,${TOPAZ},2`, reason: /no such file: .*images\/nope\.png \(a URL needs http:\/\/ or https:\/\/\)/ },
      { name: 'ftp: scheme', bytes: `ftp://files.example.com/x.png,${TOPAZ},2`, reason: /unsupported scheme "ftp:"/ },
      { name: 'javascript: scheme', bytes: `javascript:alert(1),${TOPAZ},2`, reason: /unsupported scheme "javascript:"/ },
      { name: 'data: scheme', bytes: `"data:image/png;base64,iVBORw0KGgo=",${TOPAZ},2`, reason: /unsupported scheme "data:"/ },
      { name: 'gopher: scheme', bytes: `gopher://x.example/1,${TOPAZ},2`, reason: /unsupported scheme "gopher:"/ },
      { name: 'valid, quoted comma, recraft', bytes: `"${x}/ok,2.png",${RECRAFT},`, ok: { input: `${x}/ok,2.png`, model: RECRAFT, factor: null } },
      { name: 'a 1 MB line', bytes: `${x}/${'a'.repeat(1024 * 1024)}.png,${TOPAZ},2`, reason: /line is 10\d{5} characters long, over the 8192 limit/ },
      { name: 'binary garbage with NUL bytes', bytes: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0x1a, 0x00, 0x00, 0x2c, 0x00]), reason: /not text: contains NUL bytes/ },
      { name: 'invalid UTF-8', bytes: Buffer.concat([Buffer.from(`${x}/`), Buffer.from([0xc3, 0x28, 0xff, 0xfe]), Buffer.from(`.png,${TOPAZ},2`)]), reason: /not text: invalid UTF-8/ },
      { name: 'quote inside an unquoted field', bytes: `${x}/a"b.png,${TOPAZ},2`, reason: /broken CSV quoting: a quote inside an unquoted field/ },
      { name: 'text after a closing quote', bytes: `"${x}/c.png"junk,${TOPAZ},2`, reason: /broken CSV quoting: text follows a closing quote/ },
      { name: 'unknown model', bytes: `${x}/m.png,dall-e/upscale,2`, reason: /unknown model "dall-e\/upscale"; use one of topaz\/image-upscale, recraft\/crisp-upscale/ },
      { name: 'no model at all', bytes: `${x}/n.png,,2`, reason: /no model given/ },
      { name: 'factor 3', bytes: `${x}/f3.png,${TOPAZ},3`, reason: /factor 3 is not one of 1, 2, 4, 8 for topaz\/image-upscale/ },
      { name: 'negative factor', bytes: `${x}/fn.png,${TOPAZ},-2`, reason: /factor -2 is not one of/ },
      { name: 'factor that is not a number', bytes: `${x}/fx.png,${TOPAZ},two`, reason: /factor two is not one of/ },
      { name: 'a factor with recraft', bytes: `${x}/r.png,${RECRAFT},2`, reason: /recraft\/crisp-upscale takes no factor \(got 2\)/ },
      { name: 'valid, factor written 8.0', bytes: `${x}/ok-8.png,${TOPAZ},8.0`, ok: { input: `${x}/ok-8.png`, model: TOPAZ, factor: '8' } },
      { name: 'loopback address', bytes: `http://127.0.0.1:6379/x.png,${TOPAZ},2`, reason: PRIVATE },
      { name: 'localhost', bytes: `http://localhost/x.png,${TOPAZ},2`, reason: PRIVATE },
      { name: 'cloud metadata (link-local)', bytes: `http://169.254.169.254/latest/meta-data,${TOPAZ},2`, reason: PRIVATE },
      { name: 'private 10/8', bytes: `http://10.1.2.3/x.png,${TOPAZ},2`, reason: PRIVATE },
      { name: 'IPv6 loopback', bytes: `http://[::1]/x.png,${TOPAZ},2`, reason: PRIVATE },
      { name: 'decimal IPv4 of 127.0.0.1', bytes: `http://2130706433/x.png,${TOPAZ},2`, reason: PRIVATE },
      { name: 'empty url field', bytes: `,${TOPAZ},2`, reason: /no url in column 1/ },
      { name: 'valid local file', bytes: `${png},${TOPAZ},2`, ok: { input: png, model: TOPAZ, factor: '2' } },
      { name: 'missing local path', bytes: `${join(dir, 'missing.png')},${TOPAZ},2`, reason: /no such file: .*missing\.png/ },
      { name: 'missing file:// path', bytes: `file://${join(dir, 'gone.png')},${TOPAZ},2`, reason: /no such file: .*gone\.png/ },
      { name: 'file:// URL of another host', bytes: `file://otherhost/x.png,${TOPAZ},2`, reason: /file URL is not a local path/ },
      { name: 'a directory', bytes: `${join(dir, 'a-directory.png')},${TOPAZ},2`, reason: /a-directory\.png is a directory/ },
      { name: 'not a regular file', bytes: `/dev/null,${TOPAZ},2`, reason: /\/dev\/null is not a regular file/ },
      { name: 'an unreadable file', bytes: `${join(dir, 'locked.png')},${TOPAZ},2`, reason: /locked\.png is not readable \(EACCES\)/ },
      { name: 'valid, default factor', bytes: `${x}/ok-3.webp,${TOPAZ},`, ok: { input: `${x}/ok-3.webp`, model: TOPAZ, factor: '2' } },
      { name: 'quote opened and never closed', bytes: `"${x}/open.png,${TOPAZ},2`, reason: /broken CSV quoting: a quote opened on this line is never closed/ },
      { name: 'valid after the broken quote', bytes: `${x}/ok-last.png,${TOPAZ},1`, ok: { input: `${x}/ok-last.png`, model: TOPAZ, factor: '1' } },
    ];
    await check('mixed.csv', '\uFEFFurl,model,factor', rows, 'hostile-csv');
  });

  it('a mixed JSONL file: invalid JSON and wrong types are refused line by line, good lines enqueued', async () => {
    const x = 'https://img.example.com/j';
    const rows: Row[] = [
      { name: 'valid', bytes: JSON.stringify({ url: `${x}/1.png`, model: TOPAZ, factor: 4 }), ok: { input: `${x}/1.png`, model: TOPAZ, factor: '4' } },
      { name: 'truncated JSON', bytes: `{"url":"${x}/2.png","model":"${TOPAZ}"`, reason: /invalid JSON/ },
      { name: 'trailing comma', bytes: `{"url":"${x}/3.png",}`, reason: /invalid JSON/ },
      { name: 'an array', bytes: `["${x}/4.png"]`, reason: /not a JSON object \(got an array\)/ },
      { name: 'a bare string', bytes: `"${x}/5.png"`, reason: /not a JSON object \(got a string\)/ },
      { name: 'null', bytes: 'null', reason: /not a JSON object \(got null\)/ },
      { name: 'no url field', bytes: JSON.stringify({ model: TOPAZ }), reason: /no "url" \(or "image_url", "image"\) field/ },
      { name: 'url is a number', bytes: JSON.stringify({ url: 42, model: TOPAZ }), reason: /"url" is not a string/ },
      { name: 'model is a number', bytes: JSON.stringify({ url: `${x}/6.png`, model: 7 }), reason: /"model" is not a string/ },
      { name: 'factor is an object', bytes: JSON.stringify({ url: `${x}/7.png`, model: TOPAZ, factor: {} }), reason: /"factor" is not a number or string/ },
      { name: 'valid image_url field', bytes: JSON.stringify({ image_url: `${x}/8.png`, model: RECRAFT }), ok: { input: `${x}/8.png`, model: RECRAFT, factor: null } },
      { name: 'javascript: in JSON', bytes: JSON.stringify({ url: 'javascript:alert(document.cookie)', model: TOPAZ }), reason: /unsupported scheme "javascript:"/ },
      { name: 'NUL inside a JSON string', bytes: JSON.stringify({ url: `${x}/9\u0000.png`, model: TOPAZ }), reason: /not text: contains NUL bytes/ },
    ];
    await check('mixed.jsonl', '', rows, 'hostile-jsonl');
  });

  it('with --check (pre-flight at enqueue), local files that are empty or not images are refused line by line', async () => {
    const file = async (name: string, bytes: string | Buffer) => {
      const path = join(dir, name);
      await writeFile(path, bytes);
      return path;
    };
    const empty = await file('empty.png', '');
    const html = await file('page.png', '<!DOCTYPE html><html><body>not an image</body></html>');
    const gif = await file('anim.png', Buffer.from('GIF89a\x01\x00\x01\x00\x00\x00\x00;', 'latin1'));
    const garbage = await file('garbage.jpg', Buffer.from([0x00, 0x01, 0x02, 0x03, 0xfe, 0xff]));
    const rows: Row[] = [
      { name: 'valid local file', bytes: `${png},${TOPAZ},2`, ok: { input: png, model: TOPAZ, factor: '2' } },
      // refused by the plain per-line check already, before any pre-flight
      { name: 'an empty file', bytes: `${empty},${TOPAZ},2`, reason: /empty\.png is empty \(0 bytes\)/ },
      { name: 'an HTML page named .png', bytes: `${html},${TOPAZ},2`, reason: /pre-flight: not an image \(the content is an HTML page\)/ },
      { name: 'a GIF named .png', bytes: `${gif},${TOPAZ},2`, reason: /pre-flight: format image\/gif is not accepted/ },
      { name: 'binary garbage named .jpg', bytes: `${garbage},${TOPAZ},2`, reason: /pre-flight: not an image \(the content is no known image format\)/ },
    ];
    await check('local-check.csv', 'url,model,factor', rows, 'hostile-check', ['--check']);
  });

  it('whole-file problems: an empty file enqueues nothing; a missing file and a directory are usage errors', async () => {
    const empty = join(dir, 'empty.txt');
    await writeFile(empty, '');
    const none = await enqueueCli(empty, 'hostile-empty', prefix);
    expect(none.code).toBe(0);
    // Nothing went in, so no batch exists under that id.
    expect(none.json).toEqual({ batchId: 'hostile-empty', enqueued: 0, duplicates: 0, rejected: [], warnings: [], batchCreated: false });
    expect(none.stderr).toMatch(/no images in .*empty\.txt/);
    for (const [path, reason] of [
      [join(dir, 'no-such-input.csv'), /\(exit 2\)[\s\S]*no-such-input\.csv: no such file/],
      [join(dir, 'a-directory.png'), /\(exit 2\)[\s\S]*a-directory\.png: is a directory, not a file/],
    ] as const) {
      await expect(enqueueCli(path, 'hostile-bad', prefix)).rejects.toThrow(reason);
    }
  });
});
