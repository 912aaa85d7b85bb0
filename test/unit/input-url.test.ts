import { describe, expect, it } from 'vitest';
import { expiryProblem, expiryWarning, linkExpiry } from '../../src/producer/expiry.js';
import { inputUrl, wireTarget } from '../../src/producer/input-url.js';
import { checkInput } from '../../src/producer/validate.js';

const NOW = Date.UTC(2026, 10, 29, 20, 0, 0);

describe('one URL rule: kept as written when valid, encoded once otherwise', () => {
  it('keeps the issue\'s signed URL byte for byte (quote, dot segments, escaped slash)', () => {
    const url = "https://img.example.test/s/a/./b/../p'1.jpg?X-Sig=abc%2Fd&Expires=1900000000";
    expect(inputUrl(url)).toEqual({ ok: true, url });
    expect(checkInput(url, '/', false, NOW)).toEqual({ kind: 'url', input: url });
  });

  it.each([
    ['https://cdn.example.test/p/My Photo.jpg', 'https://cdn.example.test/p/My%20Photo.jpg'],
    ['https://cdn.example.test/p/100%.jpg', 'https://cdn.example.test/p/100%25.jpg'],
    ['https://bücher.example.test/straße/café.jpg', 'https://xn--bcher-kva.example.test/stra%C3%9Fe/caf%C3%A9.jpg'],
    ['https://cdn.example.test/a.jpg?q=a b&x="y"', 'https://cdn.example.test/a.jpg?q=a%20b&x=%22y%22'],
    ['https://cdn.example.test/%E2%9C%93 ✓.png', 'https://cdn.example.test/%E2%9C%93%20%E2%9C%93.png'],
  ])('%s → %s (original recorded; the rule applied again changes nothing)', (written, encoded) => {
    expect(inputUrl(written)).toEqual({ ok: true, url: encoded, original: written });
    expect(inputUrl(encoded)).toEqual({ ok: true, url: encoded });
    expect(checkInput(written, '/', false, NOW)).toEqual({ kind: 'url', input: encoded, original: written });
  });

  it.each([
    ['https://exa mple.test/x.jpg', 'the host "exa mple.test" holds a space, which no host name can'],
    ['https:///x.jpg', 'the URL has no host'],
    ['https://a.test/x\t.jpg', 'the URL holds a control character (\\x09); remove it'],
    ['https://a.test:99999/x.jpg', 'not a valid https URL'],
  ])('rejects %j: %s', (written, reason) => {
    expect(inputUrl(written)).toEqual({ ok: false, reason });
  });
});

describe('wire target: what the request sends', () => {
  it('sends the raw path and query and keeps an explicit default port in Host', () => {
    expect(wireTarget("https://img.example.test:443/s/a/./b/../p'1.jpg?X-Sig=abc%2Fd&Expires=1900000000#frag")).toEqual({
      protocol: 'https:',
      hostname: 'img.example.test',
      port: 443,
      path: "/s/a/./b/../p'1.jpg?X-Sig=abc%2Fd&Expires=1900000000",
      hostHeader: 'img.example.test:443',
    });
    expect(wireTarget('http://Img.Example.test:80?x=1')).toMatchObject({ hostname: 'img.example.test', port: 80, path: '/?x=1', hostHeader: 'Img.Example.test:80' });
    expect(wireTarget('http://u:p%40ss@[::1]:8080/a')).toMatchObject({ hostname: '::1', port: 8080, hostHeader: '[::1]:8080', auth: 'u:p@ss' });
    expect(wireTarget('https://cdn.example.test/p/My Photo.jpg').path).toBe('/p/My%20Photo.jpg');
  });
});

describe('presigned link expiry', () => {
  const s3 = (date: string, ttl: number) =>
    `https://b.s3.amazonaws.com/k.jpg?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=${date}&X-Amz-Expires=${ttl}&X-Amz-Signature=ab`;
  it('reads S3 SigV4, GCS V4, Expires (S3 V2 / GCS V2 / CloudFront), CloudFront policies and Azure SAS', () => {
    expect(linkExpiry(s3('20261129T190000Z', 3600))).toEqual({ expiresAt: Date.UTC(2026, 10, 29, 20, 0, 0), source: 'X-Amz-Date + X-Amz-Expires' });
    expect(linkExpiry('https://storage.googleapis.com/b/k.png?X-Goog-Date=20261129T193000Z&X-Goog-Expires=60&X-Goog-Signature=x')?.expiresAt).toBe(Date.UTC(2026, 10, 29, 19, 31, 0));
    expect(linkExpiry('https://d111.cloudfront.net/k.jpg?Expires=1900000000&Signature=x&Key-Pair-Id=K')?.expiresAt).toBe(1_900_000_000_000);
    const policy = Buffer.from(JSON.stringify({ Statement: [{ Resource: '*', Condition: { DateLessThan: { 'AWS:EpochTime': 1_800_000_000 } } }] }))
      .toString('base64').replace(/\+/g, '-').replace(/=/g, '_').replace(/\//g, '~');
    expect(linkExpiry(`https://d.cloudfront.net/k.jpg?Policy=${policy}&Signature=x&Key-Pair-Id=K`)?.expiresAt).toBe(1_800_000_000_000);
    expect(linkExpiry('https://a.blob.core.windows.net/c/k.png?sv=2022&se=2026-11-29T21%3A00%3A00Z&sig=x')?.expiresAt).toBe(Date.UTC(2026, 10, 29, 21));
    expect(linkExpiry('https://cdn.example.test/k.png?v=3')).toBeNull();
  });

  it('refuses an expired S3 link at enqueue with the reason, even with a valid URL otherwise', () => {
    const expired = s3('20261129T180000Z', 3600); // 19:00 < now 20:00
    expect(expiryProblem(expired, NOW)).toBe('the link expired at 2026-11-29T19:00:00.000Z (X-Amz-Date + X-Amz-Expires); sign a new URL');
    expect(checkInput(expired, '/', false, NOW)).toEqual({ kind: 'bad', reason: expiryProblem(expired, NOW) });
    expect(checkInput(s3('20261129T193000Z', 3600), '/', false, NOW)).toMatchObject({ kind: 'url' });
  });

  it('warns when the link expires before its estimated submission', () => {
    const soon = s3('20261129T193000Z', 3600); // 20:30
    expect(expiryWarning(soon, NOW + 10 * 60_000, NOW)).toBeNull();
    expect(expiryWarning(soon, NOW + 45 * 60_000, NOW)?.warning).toBe(
      'the link expires at 2026-11-29T20:30:00.000Z (X-Amz-Date + X-Amz-Expires), in 30m00s, before its estimated submission in 45m00s: it may be refused as expired; sign it for longer',
    );
  });
});
