/**
 * Spreadsheet exports as the spreadsheets write them (encoding, BOM, delimiter, line ends, quoting), enqueued for
 * real into Redis: every valid line lands with its exact URL and line number, every bad line is rejected with its
 * line number and reason, and no URL is ever cut at a delimiter.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { enqueueFile } from '../../src/producer/index.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { deletePrefix, freshPrefix, testRedisUrl } from '../helpers/redis.js';

const TOPAZ = 'topaz/image-upscale';
const COMMA_URL = 'https://res.example.test/image/upload/w_800,h_600,c_fill/a.jpg';

let rt: Runtime;
let prefix: string;
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dialects-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  await rt.close();
  await deletePrefix(testRedisUrl(), prefix);
});

function runtime(): Runtime {
  prefix = freshPrefix('dialect');
  rt = createRuntime(loadConfig({}, { REDIS_URL: testRedisUrl(), UPSCALE_PREFIX: prefix, LOG_LEVEL: 'silent' }));
  return rt;
}

/** UTF-16 bytes of `text`, with a BOM, as Excel's "Unicode Text" (LE) or a big-endian exporter writes them. */
function utf16(text: string, endian: 'le' | 'be', bom = true): Buffer {
  const le = Buffer.from((bom ? '\uFEFF' : '') + text, 'utf16le');
  if (endian === 'le') return le;
  const be = Buffer.alloc(le.length);
  for (let i = 0; i < le.length; i += 2) {
    be[i] = le[i + 1] as number;
    be[i + 1] = le[i] as number;
  }
  return be;
}

/** Windows-1252 bytes of `text`, as German Excel's "CSV (Trennzeichen-getrennt)" writes them (€ is 0x80, – 0x96). */
function cp1252(text: string): Buffer {
  const extra: Record<string, number> = { '€': 0x80, '–': 0x96, '„': 0x84, '“': 0x93 };
  return Buffer.from([...text].map((c) => extra[c] ?? (c.charCodeAt(0) < 256 ? c.charCodeAt(0) : 0x3f)));
}

async function inputsOf(batchId: string): Promise<{ line: number | null; input: string; factor: string | null }[]> {
  const out = [];
  for await (const r of rt.store.records(batchId)) out.push({ line: r.line, input: r.input, factor: r.factor });
  return out.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
}

describe('spreadsheet dialects', () => {
  it('Excel "Unicode Text" (.txt: UTF-16LE with BOM, tab-separated, CRLF): URLs with commas arrive whole', async () => {
    runtime();
    const file = join(dir, 'unicode-text.txt');
    writeFileSync(file, utf16(`url\tfactor\r\n${COMMA_URL}\t4\r\nhttps://cdn.example.test/b.png\t2\r\n`, 'le'));
    const r = await enqueueFile(rt, file, { batchId: 'excel-utf16', model: TOPAZ });
    expect(r).toMatchObject({ enqueued: 2, rejected: [] });
    expect(await inputsOf('excel-utf16')).toEqual([
      { line: 2, input: COMMA_URL, factor: '4' },
      { line: 3, input: 'https://cdn.example.test/b.png', factor: '2' },
    ]);
  });

  it('UTF-16BE with BOM and UTF-16LE without one, tab-separated', async () => {
    runtime();
    const be = join(dir, 'be.tsv');
    writeFileSync(be, utf16(`image_url\n${COMMA_URL}\n`, 'be'));
    expect(await enqueueFile(rt, be, { batchId: 'be', model: TOPAZ })).toMatchObject({ enqueued: 1, rejected: [] });
    expect(await inputsOf('be')).toEqual([{ line: 2, input: COMMA_URL, factor: '2' }]);
    const le = join(dir, 'le-nobom.csv');
    writeFileSync(le, utf16(`url\tmodel\r\nhttps://cdn.example.test/c.webp\trecraft/crisp-upscale\r\n`, 'le', false));
    expect(await enqueueFile(rt, le, { batchId: 'le', model: TOPAZ })).toMatchObject({ enqueued: 1, rejected: [] });
    expect(await inputsOf('le')).toEqual([{ line: 2, input: 'https://cdn.example.test/c.webp', factor: null }]);
  });

  it('German Excel CSV: a sep=; first line, ; delimiter, CRLF (and the "CSV UTF-8" variant with a BOM)', async () => {
    runtime();
    const body = `sep=;\r\nurl;factor;Notiz\r\n${COMMA_URL};4;Katze, schwarz\r\nhttps://cdn.example.test/d.jpg;2;\r\n`;
    const plain = join(dir, 'excel-de.csv');
    writeFileSync(plain, body, 'latin1');
    expect(await enqueueFile(rt, plain, { batchId: 'de', model: TOPAZ })).toMatchObject({ enqueued: 2, rejected: [] });
    expect(await inputsOf('de')).toEqual([
      { line: 3, input: COMMA_URL, factor: '4' },
      { line: 4, input: 'https://cdn.example.test/d.jpg', factor: '2' },
    ]);
    const bom = join(dir, 'excel-de-utf8.csv');
    writeFileSync(bom, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(body.replace('sep=;\r\n', ''), 'utf8')]));
    expect(await enqueueFile(rt, bom, { batchId: 'de-bom', model: TOPAZ })).toMatchObject({ enqueued: 2, rejected: [] });
    expect((await inputsOf('de-bom')).map((i) => i.input)).toEqual([COMMA_URL, 'https://cdn.example.test/d.jpg']);
  });

  it('LibreOffice CSV (UTF-8, no BOM, comma, LF, text fields quoted): a quoted URL with commas arrives whole', async () => {
    runtime();
    const file = join(dir, 'libreoffice.csv');
    writeFileSync(file, `"url","factor"\n"${COMMA_URL}",4\n"https://cdn.example.test/e.png",2\n`);
    expect(await enqueueFile(rt, file, { batchId: 'lo', model: TOPAZ })).toMatchObject({ enqueued: 2, rejected: [] });
    expect(await inputsOf('lo')).toEqual([
      { line: 2, input: COMMA_URL, factor: '4' },
      { line: 3, input: 'https://cdn.example.test/e.png', factor: '2' },
    ]);
  });

  it('a url-only CSV with an unquoted URL holding commas: that line is rejected (quote it), never cut; the others land untouched', async () => {
    runtime();
    const file = join(dir, 'url-only.csv');
    writeFileSync(file, `url\nhttps://cdn.example.test/1.jpg\n${COMMA_URL}\n"${COMMA_URL.replace('a.jpg', 'b.jpg')}"\nhttps://cdn.example.test/My Photo.jpg\n`);
    const r = await enqueueFile(rt, file, { batchId: 'url-only', model: TOPAZ });
    expect(r.enqueued).toBe(3);
    expect(r.rejected).toEqual([
      {
        line: 3,
        input: COMMA_URL,
        reason:
          'the row has 3 fields but the header has 1: a value holds the delimiter ","; put the URL in double quotes ("https://…") or use another delimiter',
      },
    ]);
    const stored = await inputsOf('url-only');
    expect(stored.map((s) => s.line)).toEqual([2, 4, 5]);
    expect(stored.map((s) => s.input)).toEqual([
      'https://cdn.example.test/1.jpg',
      COMMA_URL.replace('a.jpg', 'b.jpg'),
      'https://cdn.example.test/My%20Photo.jpg',
    ]);
    // Nothing cut at a comma was stored.
    expect(stored.some((s) => s.input === 'https://res.example.test/image/upload/w_800')).toBe(false);
    const encoded = [];
    for await (const rec of rt.store.records('url-only')) if (rec.originalInput !== null) encoded.push([rec.input, rec.originalInput]);
    expect(encoded).toEqual([['https://cdn.example.test/My%20Photo.jpg', 'https://cdn.example.test/My Photo.jpg']]);
  });

  it('German Excel "CSV" in Windows-1252 (ANSI): without --encoding each row with an umlaut is rejected with its line and what to do; with encoding windows-1252 every row lands', async () => {
    runtime();
    const file = join(dir, 'excel-de-ansi.csv');
    const body = `url;factor;Notiz\r\nhttps://cdn.example.test/a.jpg;2;Käse, würzig\r\nhttps://cdn.example.test/b.jpg;4;plain\r\nhttps://cdn.example.test/c.jpg;2;Größe 3 – 5 €\r\n`;
    writeFileSync(file, cp1252(body));
    const hint = 'not text: invalid UTF-8 (the file is not UTF-8: re-export it as "CSV UTF-8" or pass --encoding windows-1252)';
    const plain = await enqueueFile(rt, file, { batchId: 'ansi', model: TOPAZ });
    expect(plain.enqueued).toBe(1);
    expect(plain.rejected.map((r) => [r.line, r.reason])).toEqual([
      [2, hint],
      [4, hint],
    ]);
    const decoded = await enqueueFile(rt, file, { batchId: 'ansi-1252', model: TOPAZ, encoding: 'windows-1252' });
    expect(decoded).toMatchObject({ enqueued: 3, rejected: [] });
    const meta = [];
    for await (const r of rt.store.records('ansi-1252')) meta.push([r.line, r.meta]);
    expect(meta.sort((a, b) => Number(a[0]) - Number(b[0]))).toEqual([
      [2, { Notiz: 'Käse, würzig' }],
      [3, { Notiz: 'plain' }],
      [4, { Notiz: 'Größe 3 – 5 €' }],
    ]);
    // latin1 is read as Windows-1252 (WHATWG), so the € and – of the same file come through too.
    const latin1 = await enqueueFile(rt, file, { batchId: 'ansi-latin1', model: TOPAZ, encoding: 'latin1' });
    expect(latin1).toMatchObject({ enqueued: 3, rejected: [] });
    // A header that is not UTF-8 fails the file before anything is stored, naming its line.
    const header = join(dir, 'excel-de-ansi-header.csv');
    writeFileSync(header, cp1252('url;Stück\r\nhttps://cdn.example.test/a.jpg;1\r\n'));
    await expect(enqueueFile(rt, header, { batchId: 'ansi-header', model: TOPAZ })).rejects.toThrow(
      `${header}: line 1: cannot read the CSV header: ${hint}`,
    );
    expect(await rt.store.batchExists('ansi-header')).toBe(false);
    // A byte order mark that contradicts --encoding fails the file too.
    const bom = join(dir, 'utf8-bom.csv');
    writeFileSync(bom, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('url\nhttps://cdn.example.test/a.jpg\n')]));
    await expect(enqueueFile(rt, bom, { batchId: 'bom-vs-flag', model: TOPAZ, encoding: 'windows-1252' })).rejects.toThrow(
      /starts with a UTF-8 byte order mark, but --encoding windows-1252 was given/,
    );
  });

  it('old Mac Excel: CR-only line ends in a CSV and a plain list are records with the right line numbers', async () => {
    runtime();
    const csv = join(dir, 'mac.csv');
    writeFileSync(csv, 'url,sku\rhttps://cdn.example.test/good.jpg,A1\rftp://cdn.example.test/bad.jpg,B2\r\rhttps://cdn.example.test/c.png,C3\r');
    const r = await enqueueFile(rt, csv, { batchId: 'mac-csv', model: TOPAZ });
    expect(r.enqueued).toBe(2);
    expect(r.rejected).toEqual([
      { line: 3, input: 'ftp://cdn.example.test/bad.jpg', reason: 'unsupported scheme "ftp:"; use an http(s) URL or a local file path' },
    ]);
    const rows = [];
    for await (const rec of rt.store.records('mac-csv')) rows.push([rec.line, rec.input, rec.meta]);
    expect(rows.sort((a, b) => Number(a[0]) - Number(b[0]))).toEqual([
      [2, 'https://cdn.example.test/good.jpg', { sku: 'A1' }],
      [5, 'https://cdn.example.test/c.png', { sku: 'C3' }],
    ]);
    const txt = join(dir, 'mac.txt');
    writeFileSync(txt, '# list\rhttps://cdn.example.test/1.jpg\rnot a url at all\rhttps://cdn.example.test/2.jpg');
    const t = await enqueueFile(rt, txt, { batchId: 'mac-txt', model: TOPAZ });
    expect(t.enqueued).toBe(2);
    expect(t.rejected.map((x) => x.line)).toEqual([3]);
    expect((await inputsOf('mac-txt')).map((x) => x.line)).toEqual([2, 4]);
  });
});
