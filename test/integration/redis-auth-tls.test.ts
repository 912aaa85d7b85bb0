/**
 * `rediss://` for real: a private `redis-server` serving TLS only (`--port 0 --tls-port P`, a self-signed
 * certificate made with openssl for 127.0.0.1) and a password. A worker process trusting the certificate
 * (NODE_EXTRA_CA_CERTS) takes a batch through over TLS; a client that does not trust it fails fast with the TLS
 * reason. Unit level: `createRedis` turns `rediss://` into TLS options, for one Redis and for a cluster.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterOptions, createRedis } from '../../src/queue/connection.js';
import { ResultStore } from '../../src/results/store.js';
import { scaledPipelineEnv } from '../../src/sim/scaled-config.js';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { runUpscale, spawnUpscale, type Proc } from '../helpers/processes.js';
import { waitFor } from '../helpers/redis.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';

const exec = promisify(execFile);
const PASSWORD = `tls-${randomBytes(8).toString('hex')}`;

describe('unit: rediss:// configures TLS', () => {
  it('for one Redis (ioredis options) and for every cluster node', () => {
    const plain = createRedis('redis://127.0.0.1:1', 'client');
    const tls = createRedis('rediss://:pw@127.0.0.1:1', 'worker');
    try {
      expect(plain.options.tls).toBeUndefined();
      expect(tls.options.tls).toBeTruthy();
      expect(tls.options).toMatchObject({ password: 'pw', maxRetriesPerRequest: null });
    } finally {
      plain.disconnect();
      tls.disconnect();
    }
    expect(clusterOptions('rediss://u:pw@seed:1', 'client').redisOptions).toMatchObject({ tls: {}, username: 'u', password: 'pw' });
  });
});

describe('Redis over TLS only (rediss://, self-signed certificate)', () => {
  let dir: string;
  let redis: RedisServer;
  let sim: Simulator;
  let worker: Proc | undefined;
  let env: Record<string, string>;
  let ca: Buffer;
  let direct: Redis;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'redis-tls-'));
    const [cert, key] = [join(dir, 'cert.pem'), join(dir, 'key.pem')];
    await exec('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']);
    ca = await readFile(cert);
    redis = await startRedisServer({ password: PASSWORD, tls: { certFile: cert, keyFile: key, caFile: cert } });
    // TLS only from here on: the plain port is switched off, so every client below speaks TLS.
    await redis.cli('config', 'set', 'port', '0');
    direct = new Redis({ host: '127.0.0.1', port: redis.tlsPort!, password: PASSWORD, tls: { ca }, maxRetriesPerRequest: 1 });
    const apiKey = `sk-${randomBytes(8).toString('hex')}`;
    sim = await startSimulator({ apiKeys: [apiKey], timeScale: 20 });
    env = {
      ...scaledPipelineEnv({ simUrl: sim.url, apiKey, timeScale: 20, redisUrl: `rediss://:${PASSWORD}@127.0.0.1:${redis.tlsPort}`, prefix: 'tls' }),
      NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem'),
    };
  }, 60_000);

  afterAll(async () => {
    await worker?.stop('SIGKILL');
    direct?.disconnect();
    await sim?.stop();
    await redis?.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  it('the plain port is closed; TLS with the CA answers', async () => {
    await expect(redis.cli('ping')).rejects.toThrow();
    expect(await direct.ping()).toBe('PONG');
  });

  it('a worker process and the CLI take a batch through over TLS', async () => {
    worker = spawnUpscale(['worker'], env);
    await waitFor(() => worker!.stderr().includes('workers started') || worker!.child.exitCode !== null, { timeoutMs: 30_000, what: 'worker start' });
    expect(worker.child.exitCode, worker.stderr()).toBeNull();
    const urls = Array.from({ length: 10 }, (_, i) => ['--url', `${sim.url}/sim/images/tls${i}-40x30.png`]).flat();
    const enq = await runUpscale(['enqueue', ...urls, '--model', 'topaz/image-upscale', '--batch', 'tls', '--json'], env);
    expect(enq.code, enq.stderr).toBe(0);
    const store = new ResultStore(direct, 'tls', 3_600_000);
    const summary = await waitFor(async () => {
      const s = await store.getSummary('tls');
      return s?.finishedAt ? s : null;
    }, { timeoutMs: 60_000, intervalMs: 200, what: 'the TLS batch' });
    expect(summary.counts.succeeded).toBe(10);
    expect(sim.stats().createAccepted).toBe(10);
    const status = await runUpscale(['status', '--batch', 'tls', '--json'], env);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ total: 10, counts: { succeeded: 10 } });
    expect(await worker.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(worker.stderr() + status.stderr + enq.stderr).not.toContain(PASSWORD);
  });

  it('a client that does not trust the certificate fails fast with the TLS reason', async () => {
    const r = await runUpscale(['status', '--json'], { ...env, NODE_EXTRA_CA_CERTS: '/dev/null' });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/self[- ]signed certificate|unable to verify|max retries per request/i);
    expect(r.stderr).not.toContain(PASSWORD);
  });
});
