import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FetchRefused, guardedGet, readHead } from '../../src/worker/ssrf.js';
import { closedPort } from '../helpers/ports.js';

/**
 * A local server standing for the internet. Loopback is private, so the tests treat only 127.0.0.2 as private
 * (`isPrivate` seam) and reach the "public" server at 127.0.0.1; Linux routes all of 127/8 to loopback.
 */
let server: Server;
let base: string;
const hits: string[] = [];
const onlyDot2 = (ip: string) => ip === '127.0.0.2';

beforeAll(async () => {
  server = createServer((req, res): void => {
    hits.push(req.url ?? '');
    const port = (server.address() as AddressInfo).port;
    const redirect = (status: number, location: string) => void res.writeHead(status, { location }).end();
    if (req.url === '/to-private') return redirect(302, `http://127.0.0.2:${port}/secret`);
    if (req.url === '/to-named') return redirect(301, `http://internal.test:${port}/secret`);
    if (req.url?.startsWith('/loop')) return redirect(307, `/loop${Number(req.url.slice(5) || 0) + 1}`);
    if (req.url === '/to-file') return redirect(302, 'file:///etc/passwd');
    if (req.url === '/relative') return redirect(302, '/big');
    if (req.url === '/big') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(64 * 1024, 1);
      let sent = 0;
      const pump = (): void => {
        while (sent < 100) {
          sent++;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      return pump();
    }
    res.writeHead(200).end('hello');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('guardedGet', () => {
  it('refuses a private address without ALLOW_PRIVATE_URLS, and fetches it with', async () => {
    await expect(guardedGet(`${base}/x`, { allowPrivate: false })).rejects.toThrow(/private address 127\.0\.0\.1.*ALLOW_PRIVATE_URLS/);
    const res = await guardedGet(`${base}/x`, { allowPrivate: true });
    expect(res.status).toBe(200);
    expect((await readHead(res.response, 100)).head.toString()).toBe('hello');
  });

  it('refuses a host when any of its addresses is private', async () => {
    const resolve = () => Promise.resolve([{ address: '127.0.0.1', family: 4 }, { address: '127.0.0.2', family: 4 }]);
    await expect(guardedGet(`http://mixed.test:1/`, { allowPrivate: false, isPrivate: onlyDot2, resolve })).rejects.toThrow(/mixed\.test resolves to the private address 127\.0\.0\.2/);
  });

  it('re-checks every redirect hop: literal and named private targets are refused before any request', async () => {
    hits.length = 0;
    await expect(guardedGet(`${base}/to-private`, { allowPrivate: false, isPrivate: onlyDot2 })).rejects.toThrow(/private address 127\.0\.0\.2/);
    const resolve = (host: string) => Promise.resolve([{ address: host === 'internal.test' ? '127.0.0.2' : '127.0.0.1', family: 4 }]);
    await expect(guardedGet(`${base}/to-named`, { allowPrivate: false, isPrivate: onlyDot2, resolve })).rejects.toMatchObject({ permanent: true });
    expect(hits).toEqual(['/to-private', '/to-named']);
  });

  it('pins the connection to the checked address (the resolver is asked once per hop)', async () => {
    let asked = 0;
    const resolve = () => {
      asked++;
      return Promise.resolve([{ address: '127.0.0.1', family: 4 }]);
    };
    const port = new URL(base).port;
    const res = await guardedGet(`http://pinned.test:${port}/x`, { allowPrivate: false, isPrivate: onlyDot2, resolve });
    res.response.destroy();
    expect(res.status).toBe(200);
    expect(asked).toBe(1);
  });

  it('follows at most maxRedirects, and never to a non-http scheme', async () => {
    await expect(guardedGet(`${base}/loop0`, { allowPrivate: true, maxRedirects: 5 })).rejects.toThrow(/more than 5 redirects/);
    await expect(guardedGet(`${base}/to-file`, { allowPrivate: true })).rejects.toThrow(/a redirect led to file:/);
    const res = await guardedGet(`${base}/relative`, { allowPrivate: true });
    expect(res.url).toBe(`${base}/big`);
    res.response.destroy();
  });

  it('reads a bounded head and aborts the rest', async () => {
    const res = await guardedGet(`${base}/big`, { allowPrivate: true });
    const read = await readHead(res.response, 1000, 200_000);
    expect(read.head.length).toBe(1000);
    expect(read.complete).toBe(false);
    expect(read.seen).toBeGreaterThanOrEqual(200_000);
    expect(read.seen).toBeLessThan(6_553_600);
  });

  it('reports a refused connection as a FetchRefused that is not permanent (a server restarting refuses too: tried again)', async () => {
    const port = await closedPort();
    const err = await guardedGet(`http://127.0.0.1:${port}/`, { allowPrivate: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FetchRefused);
    expect(err).toMatchObject({ permanent: false, message: expect.stringMatching(/ECONNREFUSED/) as unknown });
  });
});
