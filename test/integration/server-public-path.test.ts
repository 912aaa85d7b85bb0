/**
 * The public base path (issue 10): with PUBLIC_PATH, or a trusted proxy's X-Forwarded-Prefix, Bull Board's
 * `<base href>`, its Batches link, the batches page's links and the `/` redirect carry the prefix; the routes do not
 * change. An untrusted peer's header, and a header that is not a plain path, are ignored. Bad values of the two
 * variables are configuration errors naming the variable.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { startBench, type Bench } from './server-fixtures.js';

describe('PUBLIC_PATH and X-Forwarded-Prefix', () => {
  let b: Bench | undefined;
  afterEach(async () => {
    await b?.close();
    b = undefined;
  });

  const page = async (bench: Bench, url: string, headers: Record<string, string> = {}) => {
    const res = await bench.app.inject({ method: 'GET', url, headers });
    return { status: res.statusCode, body: res.body, location: res.headers.location };
  };

  it('PUBLIC_PATH=/ops/: Bull Board, the batches page and the redirect all point under /ops', async () => {
    b = await startBench({ PUBLIC_PATH: '/ops/' });
    await b.rt.store.createRecords('pp-batch', [{ jobId: 'a'.repeat(24), input: 'https://img.test/a.png', model: 'topaz/image-upscale', factor: '2' }]);
    const board = await page(b, '/dashboard/');
    expect(board.status).toBe(200);
    expect(board.body).toContain('<base href="/ops/dashboard/"');
    expect(board.body).toContain('"url":"/ops/dashboard/batches"');
    expect(board.body).not.toContain('"/dashboard/');
    const batches = await page(b, '/dashboard/batches');
    expect(batches.body).toContain('href="/ops/api/batches/pp-batch/export?format=csv"');
    expect(batches.body).toContain('href="/ops/api/batches/pp-batch"');
    expect(batches.body).toContain('href="/ops/dashboard"');
    expect(batches.body).toContain('href="/ops/api/batches"');
    expect(batches.body).not.toMatch(/href="\/(api|dashboard)/);
    expect((await page(b, '/')).location).toBe('/ops/dashboard/batches');
    // The header of an untrusted peer changes nothing.
    const spoofed = await page(b, '/dashboard/', { 'x-forwarded-prefix': '/evil' });
    expect(spoofed.body).toContain('<base href="/ops/dashboard/"');
  });

  it('without PUBLIC_PATH the pages are unchanged', async () => {
    b = await startBench();
    expect((await page(b, '/dashboard/')).body).toContain('<base href="/dashboard/"');
    expect((await page(b, '/')).location).toBe('/dashboard/batches');
  });

  it("TRUST_PROXY: a trusted proxy's X-Forwarded-Prefix wins per request; a malformed one falls back to PUBLIC_PATH", async () => {
    b = await startBench({ PUBLIC_PATH: '/ops', TRUST_PROXY: '127.0.0.1,10.0.0.0/8' });
    // inject() comes from 127.0.0.1.
    expect((await page(b, '/dashboard/', { 'x-forwarded-prefix': '/tools/upscale/' })).body).toContain('<base href="/tools/upscale/dashboard/"');
    expect((await page(b, '/', { 'x-forwarded-prefix': '/tools' })).location).toBe('/tools/dashboard/batches');
    for (const bad of ['//evil.example', 'https://evil.example', '/a/../b', '/x"><script>', '/%2e%2e', 'ops', '/a b']) {
      const res = await page(b, '/dashboard/', { 'x-forwarded-prefix': bad });
      expect(res.body, bad).toContain('<base href="/ops/dashboard/"');
    }
  });

  it('TRUST_PROXY that does not include the peer: the header is ignored', async () => {
    b = await startBench({ TRUST_PROXY: '10.0.0.0/8' });
    expect((await page(b, '/dashboard/', { 'x-forwarded-prefix': '/tools' })).body).toContain('<base href="/dashboard/"');
  });

  it('bad PUBLIC_PATH or TRUST_PROXY values are configuration errors naming the variable', () => {
    for (const [key, value] of [
      ['PUBLIC_PATH', 'ops'],
      ['PUBLIC_PATH', '/a/../b'],
      ['PUBLIC_PATH', 'https://x.example/ops'],
      ['PUBLIC_PATH', '/ops?x=1'],
      ['TRUST_PROXY', 'banana'],
      ['TRUST_PROXY', '10.0.0.0/99'],
      ['TRUST_PROXY', '10.0.0.1,nope'],
    ] as const) {
      let error: unknown;
      try {
        loadConfig({}, { [key]: value });
      } catch (e) {
        error = e;
      }
      expect(error, `${key}=${value}`).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).problems.join('\n')).toMatch(new RegExp(`^${key}: `));
    }
    expect(loadConfig({}, { PUBLIC_PATH: '/tools/upscale/', TRUST_PROXY: 'true' })).toMatchObject({ publicPath: '/tools/upscale', trustProxy: true });
    expect(loadConfig({}, { PUBLIC_PATH: '/' }).publicPath).toBe('');
    expect(loadConfig({}, { TRUST_PROXY: '127.0.0.1, ::1, 10.0.0.0/8' }).trustProxy).toEqual(['127.0.0.1', '::1', '10.0.0.0/8']);
  });
});
