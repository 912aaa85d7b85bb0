/**
 * url-problem.ts names the reason of every URL the WHATWG parser refuses (it only says "Invalid URL"), and refuses
 * nothing the parser accepts; the places that check URLs (input lines, the environment, upload bodies, sim flags)
 * pass the reason on.
 */
import { describe, expect, it } from 'vitest';
import { simOptionsFromFlags, type SimFlags } from '../../src/cli/commands/sim.js';
import { loadConfig } from '../../src/config/index.js';
import { urlBody } from '../../src/kie/uploads.js';
import { httpUrlProblem, urlProblem } from '../../src/url-problem.js';

describe('urlProblem', () => {
  it.each([
    ['http://127.0.0.1:99999/x.jpg', 'port 99999 is out of range (1-65535)'],
    ['http://host:abc/x', 'the port "abc" is not a number (a port is 1-65535)'],
    ['http://1.2.3.256/', 'the host "1.2.3.256" ends in a number, so it must be an IPv4 address, and 256 is too large'],
    ['http://0x100000000/', 'the host "0x100000000" ends in a number, so it must be an IPv4 address, and 0x100000000 is too large'],
    ['http://1.2.3.09/', 'the host "1.2.3.09" ends in a number, so it must be an IPv4 address, and "09" is not a number (a leading 0 makes it octal, without 8 or 9)'],
    ['http://cdn.123/', 'the host "cdn.123" ends in a number, so it must be an IPv4 address, and "cdn" is not a number'],
    ['http://[::1/x', 'the host "[::1" is not a valid IPv6 address (no closing "]")'],
    ['http://[::1]x/', 'the host "[::1]x" has text after its "]" that is not a :port'],
    ['http://a%20b/', 'the host "a%20b" (decoded: "a b") holds a space, which no host name can'],
    ['http://ex^ample/', 'the host "ex^ample" holds "^", which no host name can'],
    ['http://:80/', 'the URL has no host'],
    ['example.com/x.jpg', 'it has no scheme such as https:// in front'],
    ['redis://127.0.0.1:99999', 'port 99999 is out of range (1-65535)'],
    ['redis://a b/', 'the host "a b" holds a space, which no host name can'],
    ['', 'the URL is empty'],
  ])('%j: %s', (text, reason) => {
    expect(() => new URL(text)).toThrow(); // the parser refuses it, saying only "Invalid URL"
    expect(urlProblem(text)).toBe(reason);
  });

  it('names a specific reason for every refused URL of a varied set, and refuses nothing the parser accepts', () => {
    const hosts = ['a.test', 'a..b', '999.1.1.1', '1.2.3', '0x7f.1', '[::1]', '[::g]', '[1:2]', 'xn--', 'xn--a', 'bücher.test', 'a_b', '-a', 'a%41b', 'a%zz', 'a\\b', 'a|b', '', 'a.b.c.d.e', '256.1', '08.1.1.1'];
    const ports = ['', ':', ':0', ':80', ':65535', ':65536', ':99999', ':8a', ':-1', ':1:2'];
    for (const scheme of ['http', 'https', 'redis']) {
      for (const host of hosts) {
        for (const port of ports) {
          const text = `${scheme}://${host}${port}/x.jpg`;
          let parses = true;
          try {
            new URL(text);
          } catch {
            parses = false;
          }
          const reason = urlProblem(text);
          if (parses) expect(reason, text).toBeNull();
          else expect(reason, text).not.toMatch(/the URL parser refuses it/);
          if (!parses) expect(reason, text).not.toBeNull();
        }
      }
    }
    expect(httpUrlProblem('ftp://a.test/x')).toBe('it is a ftp: URL, not http(s)');
  });
});

describe('callers pass the reason on', () => {
  it('the environment, an upload body and the simulator\'s --public-url', () => {
    expect(() => loadConfig({ KIE_BASE_URL: 'http://127.0.0.1:99999' })).toThrow(
      'KIE_BASE_URL: "http://127.0.0.1:99999" is not a http(s) URL: port 99999 is out of range (1-65535) (expected http:// or https://...)',
    );
    expect(() => loadConfig({ REDIS_URL: 'redis://127.0.0.1:99999' })).toThrow(/REDIS_URL: "redis:\/\/127.0.0.1:99999" is not a Redis URL: port 99999 is out of range/);
    expect(() => loadConfig({ NOTIFY_URL: 'https://hooks.test:99999/x' })).toThrow(/"https:\/\/hooks.test:99999\/x" is not an http\(s\) URL: port 99999 is out of range \(1-65535\)/);
    expect(() => urlBody('http://127.0.0.1:99999/x.jpg', {}, 'p')).toThrow('fileUrl "http://127.0.0.1:99999/x.jpg" cannot be used: port 99999 is out of range (1-65535)');
    const flags: SimFlags = { port: '0', host: '127.0.0.1', key: ['k'], timeScale: '1', createLimit: '20/10s', queryLimit: '10/1s', rateLimitStyle: 'envelope', errorStyle: 'envelope', latency: [], fault: [], publicUrl: 'http://127.0.0.1:99999' };
    expect(() => simOptionsFromFlags(flags, {})).toThrow('--public-url "http://127.0.0.1:99999" must be an http(s) URL: port 99999 is out of range (1-65535)');
  });
});
