import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/producer/errors.js';
import { readLines, type RawLine } from '../../src/producer/lines.js';
import { parseInput, sniffFormat } from '../../src/producer/parse.js';
import type { InputFormat, ParsedLine } from '../../src/producer/types.js';

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** Feeds `parts` as separate chunks, so chunk boundaries fall where the test wants them. */
function chunks(...parts: (string | Buffer)[]): AsyncIterable<Buffer> {
  return Readable.from(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)));
}

const parse = (text: string | Buffer, format?: InputFormat): Promise<ParsedLine[]> =>
  collect(parseInput(chunks(text), format));

describe('readLines', () => {
  it('strips a BOM, accepts CRLF and LF, and numbers physical lines across chunk boundaries', async () => {
    const lines = await collect(
      readLines(chunks(Buffer.from([0xef, 0xbb]), Buffer.from([0xbf]), 'a\r', '\nb\n\nc\r\n', 'd')),
    );
    expect(lines).toEqual<RawLine[]>([
      { line: 1, text: 'a' },
      { line: 2, text: 'b' },
      { line: 3, text: '' },
      { line: 4, text: 'c' },
      { line: 5, text: 'd' },
    ]);
  });

  it('ends lines at LF, CRLF and a lone CR (old Mac), a CRLF split across chunks being one end', async () => {
    const lines = await collect(readLines(chunks('a\rb\r', '\nc\r\r', 'd\n\re\r')));
    expect(lines).toEqual<RawLine[]>([
      { line: 1, text: 'a' },
      { line: 2, text: 'b' },
      { line: 3, text: 'c' },
      { line: 4, text: '' },
      { line: 5, text: 'd' },
      { line: 6, text: '' },
      { line: 7, text: 'e' },
    ]);
    // A UTF-8 file with a BOM names no encoding problem on a bad byte: the hint is for files without one.
    const bom = await collect(readLines(chunks(Buffer.from([0xef, 0xbb, 0xbf, 0x61, 0xff, 0x0d]), 'ok\r')));
    expect(bom).toEqual([{ line: 1, text: 'a\uFFFD', problem: 'not text: invalid UTF-8' }, { line: 2, text: 'ok' }]);
    // Windows-1252 when asked: 0x80 is €.
    expect(await collect(readLines(chunks(Buffer.from([0x47, 0x72, 0xf6, 0xdf, 0x65, 0x20, 0x80, 0x0d])), { encoding: 'windows-1252' }))).toEqual([{ line: 1, text: 'Größe €' }]);
  });

  it('keeps only the start of an over-long line and reports its length', async () => {
    const lines = await collect(
      readLines(chunks('ok\n', 'x'.repeat(600_000), 'x'.repeat(448_576), '\nnext\n')),
    );
    expect(lines).toHaveLength(3);
    expect(lines[1]).toEqual({
      line: 2,
      text: 'x'.repeat(201),
      problem: 'line is 1048576 characters long, over the 8192 limit',
    });
    expect(lines[2]).toEqual({ line: 3, text: 'next' });
  });

  it('accepts exactly 8192 characters (CR not counted) and flags NUL bytes and invalid UTF-8', async () => {
    const lines = await collect(
      readLines(
        chunks(`${'y'.repeat(8192)}\r\n`, 'a\u0000b\n', Buffer.from([0x68, 0xff, 0xfe, 0x0a]), 'caf\u00e9\n'),
      ),
    );
    expect(lines[0]).toEqual({ line: 1, text: 'y'.repeat(8192) });
    expect(lines[1]?.problem).toBe('not text: contains NUL bytes');
    expect(lines[2]?.problem).toBe('not text: invalid UTF-8 (the file is not UTF-8: re-export it as "CSV UTF-8" or pass --encoding windows-1252)');
    expect(lines[3]).toEqual({ line: 4, text: 'café' });
  });
});

describe('txt', () => {
  it('yields one trimmed input per line, skipping blank lines and # comments', async () => {
    expect(await parse('# list\n  https://a/1.png  \n\n\t\nimg/2.png\r\n', 'txt')).toEqual([
      { line: 2, input: 'https://a/1.png' },
      { line: 5, input: 'img/2.png' },
    ]);
  });
});

describe('jsonl', () => {
  it('reads url / image_url / image with optional model and factor', async () => {
    const text = [
      '{"url":"https://a/1"}',
      '',
      '{"image_url":"https://a/2","factor":4}',
      '{"image":" https://a/3 ","model":"m","factor":"8"}',
    ];
    expect(await parse(text.join('\n'), 'jsonl')).toEqual([
      { line: 1, input: 'https://a/1' },
      { line: 3, input: 'https://a/2', factor: 4 },
      { line: 4, input: 'https://a/3', model: 'm', factor: '8' },
    ]);
  });

  it('rejects invalid JSON, non-objects and missing or mistyped fields, line by line', async () => {
    const text = [
      '{"url":',
      '[1,2]',
      '"https://a"',
      'null',
      '{"href":"x"}',
      '{"url":5}',
      '{"url":"u","factor":[2]}',
      '{"url":"https://ok"}',
    ];
    const out = await parse(text.join('\n'), 'jsonl');
    expect(out.map((l) => [l.line, l.reason?.replace(/:.*/, '')])).toEqual([
      [1, 'invalid JSON'],
      [2, 'not a JSON object (got an array)'],
      [3, 'not a JSON object (got a string)'],
      [4, 'not a JSON object (got null)'],
      [5, 'no "url" (or "image_url", "image") field'],
      [6, '"url" is not a string'],
      [7, '"factor" is not a number or string'],
      [8, undefined],
    ]);
  });
});

describe('csv', () => {
  it('finds the columns in any order, trims fields and keeps quoted commas and line breaks', async () => {
    const text =
      'Factor , URL,model,caption\n4,https://a/1,,x\n,"https://a/2",recraft/crisp-upscale,"a, b"\n8,https://a/3,,"two\nlines"\n,https://a/4,,\n,,,\n';
    expect(await parse(text, 'csv')).toEqual([
      { line: 2, input: 'https://a/1', factor: '4', meta: { caption: 'x' } },
      { line: 3, input: 'https://a/2', model: 'recraft/crisp-upscale', meta: { caption: 'a, b' } },
      { line: 4, input: 'https://a/3', factor: '8', meta: { caption: 'two lines' } },
      { line: 6, input: 'https://a/4' },
    ]);
  });

  it('rejects a line with broken quoting and goes on with the next line', async () => {
    const text = [
      'url,model',
      'https://a/1"x,topaz/image-upscale', // 2: quote inside an unquoted field
      'https://a/3,topaz/image-upscale',
      '"https://a/4"junk,topaz/image-upscale', // 4: text after a closing quote
      'https://a/5,topaz/image-upscale',
      '"https://a/6,topaz/image-upscale', // 6: never closed...
      'https://a/7,topaz/image-upscale',
      'https://a/8",topaz/image-upscale', // 8: ...until a stray quote here
      'https://a/9,topaz/image-upscale',
      '"https://a/10,topaz/image-upscale', // 10: open at the end of the file
      'https://a/11,topaz/image-upscale',
    ].join('\n');
    const out = await parse(text, 'csv');
    expect(out.map((l) => [l.line, l.reason ?? l.input])).toEqual([
      [
        2,
        'broken CSV quoting: a quote inside an unquoted field (quote the whole field and double the quote)',
      ],
      [3, 'https://a/3'],
      [4, 'broken CSV quoting: text follows a closing quote in the same field'],
      [5, 'https://a/5'],
      [6, 'broken CSV quoting: a quote opened on this line is never closed'],
      [7, 'https://a/7'],
      [
        8,
        'broken CSV quoting: a quote inside an unquoted field (quote the whole field and double the quote)',
      ],
      [9, 'https://a/9'],
      [10, 'broken CSV quoting: a quote opened on this line is never closed'],
      [11, 'https://a/11'],
    ]);
    expect(out[0]?.input).toBe('https://a/1"x,topaz/image-upscale');
  });

  it('gives up on a quoted field after 8192 characters and reads the following lines again', async () => {
    const text = `url,note\nhttps://a/1,"open\n${'filler line\n'.repeat(1000)}`;
    const out = await parse(text, 'csv');
    expect(out[0]).toMatchObject({
      line: 2,
      reason: 'broken CSV quoting: a quote opened on this line is not closed within 8192 characters',
    });
    expect(out).toHaveLength(1001);
    expect(out[1]).toEqual({ line: 3, input: 'filler line' });
  });

  it('keeps line order when over-long or binary lines sit between records', async () => {
    const out = await parse(`url\nhttps://a/1\n${'z'.repeat(9000)}\nhttps://a/2\na\u0000b\nc\n`, 'csv');
    expect(out.map((l) => l.line)).toEqual([2, 3, 4, 5, 6]);
    expect(out[1]?.reason).toBe('line is 9000 characters long, over the 8192 limit');
    expect(out[3]?.reason).toBe('not text: contains NUL bytes');
  });

  it('fails the whole input when the header has no url column or cannot be read', async () => {
    await expect(parse('name,model\nx,y\n', 'csv')).rejects.toThrow(
      new InputError('stream: line 1: the CSV header has no "url" column (found: "name", "model", split at ",")'),
    );
    await expect(parse('\n"url,model\nx,y\n', 'csv')).rejects.toThrow(
      /stream: line 2: cannot read the CSV header: broken CSV quoting/,
    );
  });
});

describe('format sniffing', () => {
  it('picks jsonl for {, csv for a header with a url column, txt otherwise', () => {
    expect(sniffFormat('{"url":"x"}')).toBe('jsonl');
    expect(sniffFormat('id,"URL",model')).toBe('csv');
    expect(sniffFormat('image_url')).toBe('csv');
    expect(sniffFormat('https://a/1.png')).toBe('txt');
    expect(sniffFormat('https://a/1.png,foo')).toBe('txt');
  });

  it('sniffs stream input from the first meaningful line and replays what it read', async () => {
    expect(await parse('\n# c\n{"url":"https://a/1"}\n')).toEqual([{ line: 3, input: 'https://a/1' }]);
    expect(await parse('\nurl,factor\nhttps://a/1,4\n')).toEqual([
      { line: 3, input: 'https://a/1', factor: '4' },
    ]);
    expect(await parse('\ufeff# c\nhttps://a/1\n')).toEqual([{ line: 2, input: 'https://a/1' }]);
  });

  it('takes the format from the extension of a path', async () => {
    const out = await collect(parseInput('test/fixtures/inputs/images.csv'));
    expect(out.map((l) => l.line)).toEqual([2, 3, 4, 6]);
  });
});

describe('comments', () => {
  it('ignores whole-line # comments in every format, but not a # inside a value', async () => {
    expect(await parse('# c\n{"url":"https://a/1#x"}\n', 'jsonl')).toEqual([
      { line: 2, input: 'https://a/1#x' },
    ]);
    expect(await parse('# c\nurl\n# d\nhttps://a/1#x\n', 'csv')).toEqual([
      { line: 4, input: 'https://a/1#x' },
    ]);
  });
});

describe('meta (extra columns and fields)', () => {
  it('keeps a CSV\'s extra columns (sku) under their header names, empty values left out', async () => {
    const text = 'url,sku,Colour_name\nhttps://a/1.jpg,12345,red\nhttps://a/2.jpg,,\nhttps://a/3.jpg, 777 ,"light\tblue"\n';
    expect(await parse(text, 'csv')).toEqual([
      { line: 2, input: 'https://a/1.jpg', meta: { sku: '12345', Colour_name: 'red' } },
      { line: 3, input: 'https://a/2.jpg' },
      { line: 4, input: 'https://a/3.jpg', meta: { sku: '777', Colour_name: 'light blue' } },
    ]);
  });

  it('fails a CSV whose header names a column that cannot be a meta key, a repeated one, or too many', async () => {
    await expect(parse('url,Product Name\nhttps://a/1,x\n', 'csv')).rejects.toThrow(
      'stream: line 1: column 2 of the CSV header: "Product Name" cannot be a meta key: use 1-64 letters, digits, "_", "." or "-" (starting with a letter, digit or "_") (rename the column)',
    );
    await expect(parse('url,sku,sku\nhttps://a/1,1,2\n', 'csv')).rejects.toThrow(
      'stream: line 1: column 3 of the CSV header: "sku" appears twice',
    );
    const wide = ['url', ...Array.from({ length: 17 }, (_, i) => `c${i}`)].join(',');
    await expect(parse(`${wide}\nhttps://a/1\n`, 'csv')).rejects.toThrow(
      'stream: line 1: the CSV header has 17 extra columns (kept as meta), over the 16 limit; remove some',
    );
  });

  it('ignores columns without a header name (a trailing comma)', async () => {
    expect(await parse('url,sku,\nhttps://a/1,9,zzz\n', 'csv')).toEqual([
      { line: 2, input: 'https://a/1', meta: { sku: '9' } },
    ]);
  });

  it('keeps a JSON line\'s other fields and the entries of a "meta" object as text', async () => {
    const text = [
      '{"url":"https://a/1","sku":12345,"sale":true,"note":null,"meta":{"alt":"front"}}',
      '{"url":"https://a/2","tags":["a"]}',
      '{"url":"https://a/3","dims":{"w":1}}',
      '{"url":"https://a/4","meta":"x"}',
      '{"url":"https://a/5","sku":"1","meta":{"sku":"2"}}',
      '{"image":"https://a/6","model":"topaz/image-upscale","factor":2}',
    ].join('\n');
    expect(await parse(text, 'jsonl')).toEqual([
      { line: 1, input: 'https://a/1', meta: { sku: '12345', sale: 'true', alt: 'front' } },
      { line: 2, input: '{"url":"https://a/2","tags":["a"]}', reason: '"tags" is an array; extra fields (meta) must be strings, numbers or booleans' },
      { line: 3, input: '{"url":"https://a/3","dims":{"w":1}}', reason: '"dims" is an object; extra fields (meta) must be strings, numbers or booleans' },
      { line: 4, input: '{"url":"https://a/4","meta":"x"}', reason: '"meta" is not an object' },
      { line: 5, input: '{"url":"https://a/5","sku":"1","meta":{"sku":"2"}}', reason: '"sku" is given both as a field and inside "meta"' },
      { line: 6, input: 'https://a/6', model: 'topaz/image-upscale', factor: 2 },
    ]);
  });
});
