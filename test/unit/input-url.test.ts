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
    ['http://127.0.0.1:99999/x.jpg', 'port 99999 is out of range (1-65535)'],
    ['https://a.test:99999/x.jpg', 'port 99999 is out of range (1-65535)'],
    ['http://a.test:0/x.jpg', 'port 0 is out of range (1-65535)'],
    ['http://a.test:8o8o/x.jpg', 'the port "8o8o" is not a number (a port is 1-65535)'],
    ['http://999.1.2.3/x.jpg', 'the host "999.1.2.3" ends in a number, so it must be an IPv4 address, and 999 is over 255'],
    ['http://10.0.0.1.5/x.jpg', 'the host "10.0.0.1.5" ends in a number, so it must be an IPv4 address, and it has 5 parts (at most 4)'],
    ['http://[::g]/x.jpg', 'the host "[::g]" is not a valid IPv6 address'],
    ['http://xn--a.test/x.jpg', 'the host "xn--a.test" is not a valid domain name (an empty or over-long label, or a label that is not valid IDNA/punycode)'],
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
    // Expires beside Signature and each scheme's key id; a Unix time in milliseconds (> 1e11) is read as ms.
    expect(linkExpiry('https://b.s3.amazonaws.com/k.jpg?AWSAccessKeyId=AKIA&Expires=1900000000&Signature=x')).toEqual({ expiresAt: 1_900_000_000_000, source: 'Expires, S3 V2' });
    expect(linkExpiry('https://storage.googleapis.com/b/k.jpg?GoogleAccessId=a%40b&Expires=1900000000&Signature=x')?.source).toBe('Expires, GCS V2');
    expect(linkExpiry('https://b.oss-cn-hangzhou.aliyuncs.com/k.jpg?OSSAccessKeyId=k&Expires=1900000000&Signature=x')?.source).toBe('Expires, OSS');
    expect(linkExpiry('https://d111.cloudfront.net/k.jpg?Expires=1900000000123&Signature=x&Key-Pair-Id=K')).toEqual({ expiresAt: 1_900_000_000_123, source: 'Expires, CloudFront' });
    expect(linkExpiry('https://a.akamaized.net/k.jpg?__token__=st%3D1800000000~exp%3D1900000000~acl%3D%2F*~hmac%3Dab12')).toEqual({ expiresAt: 1_900_000_000_000, source: 'the Akamai token exp' });
  });

  it('reads no expiry from a URL that is not recognisably signed', () => {
    // The false positive: a plain, unsigned ?expires=3600 was refused as "expired at 1970-01-01".
    const plain = 'https://cdn.example.test/photos/a.jpg?expires=3600';
    expect(linkExpiry(plain)).toBeNull();
    expect(expiryProblem(plain, NOW)).toBeNull();
    expect(checkInput(plain, '/', false, NOW)).toEqual({ kind: 'url', input: plain });
    for (const url of [
      'https://cdn.example.test/a.jpg?Expires=1700000000&Signature=x', // no key id: no scheme
      'https://cdn.example.test/a.jpg?Expires=1700000000&Key-Pair-Id=K', // no signature
      'https://b.s3.amazonaws.com/k.jpg?X-Amz-Date=20261129T180000Z&X-Amz-Expires=60', // SigV4 without its signature
      'https://storage.googleapis.com/b/k.png?X-Goog-Date=20261129T180000Z&X-Goog-Expires=60&X-Amz-Signature=x', // another scheme's signature
      'https://a.blob.core.windows.net/c/k.png?se=2020-01-01T00%3A00%3A00Z', // SAS se without sig
      'https://a.akamaized.net/k.jpg?__token__=exp%3D1600000000', // a token without its hmac
    ]) {
      expect(linkExpiry(url), url).toBeNull();
    }
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
    // Under a minute, in seconds (it read "expires in 0 min, before its estimated submission in 1 min").
    const seconds = s3('20261129T190000Z', 3625); // 20:00:25
    expect(expiryWarning(seconds, NOW + 40_000, NOW)?.warning).toBe(
      'the link expires at 2026-11-29T20:00:25.000Z (X-Amz-Date + X-Amz-Expires), in 25s, before its estimated submission in 40s: it may be refused as expired; sign it for longer',
    );
  });
});
