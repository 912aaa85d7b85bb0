/**
 * SSRF: the pre-flight fetch of an input image never reaches a private, loopback, link-local or unspecified
 * address, whether the URL names it literally (in any spelling), through a DNS name that resolves there, or
 * through a redirect from a public host. Trap servers on 127.0.0.2 and ::1 count every request they get: none.
 *
 * 1. Through the public function `preflight()`, with the DNS answers injected (`resolve`) and 127.0.0.1 playing the
 *    public internet (`isPrivate` is the real policy except for that one address).
 * 2. Through a real `upscale worker` process with ALLOW_PRIVATE_URLS=false and no seams at all: images enqueued
 *    straight into the queue (past the producer's own check) end `failed` (`preflight`), nothing is fetched, and
 *    no createTask is sent.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { isPrivateAddress } from '../../src/producer/address-policy.js';
import { imageJobId, submitJobId } from '../../src/queue/identity.js';
import type { SubmitJobData } from '../../src/queue/job-data.js';
import type { ResultRecord } from '../../src/results/record.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { scaledPipelineEnv } from '../../src/sim/scaled-config.js';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { preflight } from '../../src/worker/preflight.js';
import { makeImage } from '../helpers/images.js';
import { spawnUpscale, type Proc } from '../helpers/processes.js';
import { deletePrefix, freshPrefix, testRedisUrl, waitFor } from '../helpers/redis.js';

const TOPAZ = 'topaz/image-upscale' as const;
let png: Buffer;
const hits: string[] = [];

/** A server that answers a PNG and counts hits; `route` may redirect. */
async function listen(host: string, route?: (url: string, res: ServerResponse) => boolean): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    hits.push(`${host} ${req.url}`);
    if (route?.(req.url ?? '', res)) return;
    res.writeHead(200, { 'content-type': 'image/png', 'content-length': png.length }).end(png);
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  return { server, port: (server.address() as AddressInfo).port };
}

const close = (s: Server | undefined) => new Promise<void>((r) => (s ? s.close(() => r()) : r()));

describe('SSRF through preflight() (DNS answers injected)', () => {
  let pub: { server: Server; port: number };
  let trap4: { server: Server; port: number };
  let trap6: { server: Server; port: number };
  const DNS: Record<string, string[]> = {
    'metadata.test': ['169.254.169.254'],
    'intranet.test': ['10.1.2.3'],
    'cgnat.test': ['100.64.7.7'],
    'v6-link.test': ['fe80::1'],
    'v6-ula.test': ['fd12:3456::1'],
    'mapped.test': ['::ffff:192.168.0.1'],
    'loopback.test': ['127.0.0.2'],
    'mixed.test': ['93.184.216.34', '192.168.0.7'],
    'public.test': ['127.0.0.1'],
  };
  const resolve = (host: string) => {
    const a = DNS[host];
    if (!a) return Promise.reject(Object.assign(new Error(`ENOTFOUND ${host}`), { code: 'ENOTFOUND' }));
    return Promise.resolve(a.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })));
  };
  const opts = { allowPrivate: false, resolve, isPrivate: (ip: string) => ip !== '127.0.0.1' && isPrivateAddress(ip), tries: 1 };

  beforeAll(async () => {
    png = await makeImage(40, 30);
    trap4 = await listen('127.0.0.2');
    trap6 = await listen('::1');
    pub = await listen('127.0.0.1', (url, res) => {
      const m = /^\/redirect\?to=(.+)$/.exec(url);
      if (!m) return false;
      res.writeHead(302, { location: decodeURIComponent(m[1] as string) }).end();
      return true;
    });
  });
  afterAll(async () => Promise.all([close(pub?.server), close(trap4?.server), close(trap6?.server)]));

  const targets = () => {
    const t4 = trap4.port;
    const t6 = trap6.port;
    return {
      literal: [
        [`http://127.0.0.2:${t4}/x.png`, '127.0.0.2'],
        [`http://0x7f.0.0.2:${t4}/x.png`, '127.0.0.2'],
        [`http://2130706434:${t4}/x.png`, '127.0.0.2'],
        [`http://[::1]:${t6}/x.png`, '::1'],
        [`http://[::ffff:127.0.0.2]:${t4}/x.png`, '::ffff:7f00:2'],
        [`http://0.0.0.0:${t4}/x.png`, '0.0.0.0'],
        ['http://10.0.0.1/x.png', '10.0.0.1'],
        ['http://172.16.0.1/x.png', '172.16.0.1'],
        ['http://192.168.1.1/x.png', '192.168.1.1'],
        ['http://169.254.169.254/latest/meta-data/iam/security-credentials/', '169.254.169.254'],
        ['http://100.64.0.1/x.png', '100.64.0.1'],
        ['http://[fe80::1]/x.png', 'fe80::1'],
        ['http://[fd00::1]/x.png', 'fd00::1'],
      ],
      named: [
        ['http://metadata.test/latest/meta-data/', '169.254.169.254'],
        ['http://intranet.test/x.png', '10.1.2.3'],
        ['http://cgnat.test/x.png', '100.64.7.7'],
        ['http://v6-link.test/x.png', 'fe80::1'],
        ['http://v6-ula.test/x.png', 'fd12:3456::1'],
        ['http://mapped.test/x.png', '::ffff:192.168.0.1'],
        [`http://loopback.test:${t4}/x.png`, '127.0.0.2'],
        ['http://mixed.test/x.png', '192.168.0.7'],
      ],
      redirected: [
        [`http://127.0.0.2:${t4}/x.png`, '127.0.0.2'],
        [`http://[::1]:${t6}/x.png`, '::1'],
        [`http://loopback.test:${t4}/x.png`, '127.0.0.2'],
        ['http://169.254.169.254/latest/meta-data/', '169.254.169.254'],
        ['http://metadata.test/latest/meta-data/', '169.254.169.254'],
        // two hops: public → public → private
        [`http://public.test:${pub.port}/redirect?to=${encodeURIComponent(`http://127.0.0.2:${t4}/x.png`)}`, '127.0.0.2'],
      ].map(([to, addr]) => [`http://127.0.0.1:${pub.port}/redirect?to=${encodeURIComponent(to as string)}`, addr]),
    };
  };

  it('refuses every private target, literal, named or redirected; the traps are never reached', async () => {
    hits.length = 0;
    const all = Object.entries(targets()).flatMap(([kind, list]) => list.map(([url, addr]) => ({ kind, url: url as string, addr: addr as string })));
    expect(all.length).toBeGreaterThanOrEqual(27);
    for (const { kind, url, addr } of all) {
      const r = await preflight({ url }, TOPAZ, '2', opts);
      expect(r, `${kind} ${url}`).toMatchObject({ ok: false, permanent: true });
      expect(r.ok ? '' : r.reason, `${kind} ${url}`).toContain(`private address ${addr}; set ALLOW_PRIVATE_URLS=true`);
    }
    expect(hits.filter((h) => !h.startsWith('127.0.0.1 '))).toEqual([]);
  });

  it('the same targets are reachable with ALLOW_PRIVATE_URLS (the traps work), and a public host passes', async () => {
    hits.length = 0;
    expect(await preflight({ url: `http://127.0.0.2:${trap4.port}/x.png` }, TOPAZ, '2', { ...opts, allowPrivate: true })).toMatchObject({ ok: true });
    expect(await preflight({ url: `http://[::1]:${trap6.port}/x.png` }, TOPAZ, '2', { ...opts, allowPrivate: true })).toMatchObject({ ok: true });
    expect(await preflight({ url: `http://public.test:${pub.port}/x.png` }, TOPAZ, '2', opts)).toMatchObject({ ok: true, facts: { width: 40, height: 30 } });
    expect(hits).toHaveLength(3);
  });

  it('localhost is refused with the real resolver and policy', async () => {
    const r = await preflight({ url: `http://localhost:${trap4.port}/x.png` }, TOPAZ, '2', { allowPrivate: false, tries: 1 });
    expect(r).toMatchObject({ ok: false, permanent: true, reason: expect.stringMatching(/localhost resolves to the private address (127\.0\.0\.1|::1)/) as unknown });
  });
});

describe('SSRF through a worker process (ALLOW_PRIVATE_URLS=false, no seams)', () => {
  const prefix = freshPrefix('sec-ssrf');
  let sim: Simulator;
  let rt: Runtime;
  let worker: Proc;
  let trap4: { server: Server; port: number };
  let trap6: { server: Server; port: number };
  const records: ResultRecord[] = [];

  beforeAll(async () => {
    png ??= await makeImage(40, 30);
    trap4 = await listen('127.0.0.1');
    trap6 = await listen('::1');
    const apiKey = `sk-${randomBytes(8).toString('hex')}`;
    sim = await startSimulator({ apiKeys: [apiKey], timeScale: 20 });
    const env = { ...scaledPipelineEnv({ simUrl: sim.url, apiKey, timeScale: 20, redisUrl: testRedisUrl(), prefix }), ALLOW_PRIVATE_URLS: 'false' };
    rt = createRuntime(loadConfig({}, env), { log: pino({ level: 'silent' }) });
    worker = spawnUpscale(['worker'], env);
    await waitFor(() => worker.stderr().includes('workers started'), { timeoutMs: 30_000, what: 'worker start' });
    const t = trap4.port;
    const inputs = [
      `http://localhost:${t}/a.png`, `http://LOCALHOST.:${t}/b.png`, `http://127.0.0.1:${t}/c.png`, `http://127.1:${t}/d.png`,
      `http://2130706433:${t}/e.png`, `http://0x7f000001:${t}/f.png`, `http://[::ffff:127.0.0.1]:${t}/g.png`, `http://0.0.0.0:${t}/h.png`,
      `http://[::1]:${trap6.port}/i.png`, 'http://169.254.169.254/latest/meta-data/', `http://[::]:${t}/j.png`,
    ];
    hits.length = 0;
    const images = inputs.map((input) => ({ jobId: imageJobId('ssrf', TOPAZ, '2', input), input, model: TOPAZ, factor: '2' as const }));
    await rt.store.createRecords('ssrf', images);
    await rt.queues.submit.addBulk(images.map((img) => ({ name: 'submit', data: { ...img, batchId: 'ssrf', generation: 0 } satisfies SubmitJobData, opts: { jobId: submitJobId(img.jobId, 0) } })));
    await waitFor(async () => {
      records.length = 0;
      for await (const r of rt.store.records('ssrf')) records.push(r);
      return records.length === inputs.length && records.every((r) => r.state === 'failed');
    }, { timeoutMs: 60_000, what: 'every SSRF image to be refused' });
  }, 90_000);

  afterAll(async () => {
    await worker?.stop('SIGKILL');
    await rt?.close();
    await sim?.stop();
    await Promise.all([close(trap4?.server), close(trap6?.server)]);
    await deletePrefix(testRedisUrl(), prefix);
  });

  it('records every image failed by the pre-flight with the reason; nothing fetched, no createTask, the worker alive', () => {
    for (const r of records) {
      expect(r, r.input).toMatchObject({ state: 'failed', failCode: 'preflight', submitAttempts: 0, taskId: null });
      // `localhost.` (trailing dot) may not resolve at all where /etc/hosts has no such line: refused either way.
      const reason = r.input.includes('LOCALHOST.') ? /private address|does not resolve/ : /resolves to the private address .*; set ALLOW_PRIVATE_URLS=true to allow/;
      expect(r.failMsg, r.input).toMatch(reason);
    }
    expect(hits).toEqual([]);
    expect(sim.stats().createAccepted).toBe(0);
    expect(sim.stats().perInput).toEqual({});
    expect(worker.child.exitCode).toBeNull();
  });
});
