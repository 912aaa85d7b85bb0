/**
 * The pipeline on a three-master Redis Cluster (private `redis-server --cluster-enabled yes` ×3 on loopback,
 * joined by `redis-cli --cluster create`): a worker process with REDIS_CLUSTER_NODES and a hash-tagged prefix
 * takes 50 images to success with one createTask each, and every key of the run lives in the prefix's slot.
 */
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { enqueue } from '../../src/producer/index.js';
import { clusterOptions, createRedis, isCluster } from '../../src/queue/connection.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { scaledPipelineEnv } from '../../src/sim/scaled-config.js';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { waitForBatch } from '../helpers/pipeline.js';
import { runUpscale, spawnUpscale, type Proc } from '../helpers/processes.js';
import { waitFor } from '../helpers/redis.js';
import { startRedisCluster, type RedisCluster } from '../helpers/redis-server.js';

const IMAGES = 50;
const SCALE = 20;

describe('Redis Cluster (3 masters)', () => {
  let cluster: RedisCluster | undefined;
  let sim: Simulator | undefined;
  let rt: Runtime | undefined;
  let worker: Proc | undefined;
  let env: Record<string, string>;
  const prefix = `{cl-${randomBytes(4).toString('hex')}}`;

  beforeAll(async () => {
    cluster = await startRedisCluster(3);
    const apiKey = `sk-cluster-${randomBytes(6).toString('hex')}`;
    sim = await startSimulator({ apiKeys: [apiKey], timeScale: SCALE, seed: 11 });
    env = {
      ...scaledPipelineEnv({ simUrl: sim.url, apiKey, timeScale: SCALE, redisUrl: `redis://127.0.0.1:${cluster.servers[0]!.port}`, prefix }),
      REDIS_CLUSTER_NODES: cluster.nodes,
    };
    rt = createRuntime(loadConfig({}, env), { log: pino({ level: 'silent' }) });
  }, 60_000);

  afterAll(async () => {
    await worker?.stop('SIGKILL');
    await rt?.close();
    await sim?.stop();
    await cluster?.destroy();
  });

  it('refuses a prefix without a hash tag, and builds Cluster options for each role', () => {
    expect(() => loadConfig({}, { REDIS_CLUSTER_NODES: '127.0.0.1:7000', UPSCALE_PREFIX: 'upscale' })).toThrow(ConfigError);
    expect(() => loadConfig({}, { REDIS_CLUSTER_NODES: '127.0.0.1:7000', UPSCALE_PREFIX: 'up{}scale' })).toThrow(/hash tag/);
    expect(() => loadConfig({}, { REDIS_CLUSTER_NODES: 'nohost', UPSCALE_PREFIX: '{u}' })).toThrow(/REDIS_CLUSTER_NODES: "nohost" is not host:port/);
    const c = loadConfig({}, { REDIS_CLUSTER_NODES: '10.0.0.5:7000, [::1]:7001', UPSCALE_PREFIX: '{upscale}' });
    expect(c.redisClusterNodes).toEqual([{ host: '10.0.0.5', port: 7000 }, { host: '::1', port: 7001 }]);
    const worker = clusterOptions('rediss://user:p%40ss@ignored:1', 'worker');
    expect(worker.redisOptions).toMatchObject({ maxRetriesPerRequest: null, username: 'user', password: 'p@ss', tls: {} });
    expect(clusterOptions('redis://127.0.0.1:6379', 'client').redisOptions).toMatchObject({ maxRetriesPerRequest: 3 });
    expect(clusterOptions('redis://127.0.0.1:6379', 'client').redisOptions).not.toHaveProperty('tls');
    const client = createRedis('redis://127.0.0.1:1', 'client', [{ host: '127.0.0.1', port: 1 }]);
    expect(isCluster(client)).toBe(true);
    client.disconnect();
  });

  it('a one-shot command fails fast when no node of the cluster answers', async () => {
    const t0 = Date.now();
    const r = await runUpscale(['status', '--json'], { ...env, REDIS_CLUSTER_NODES: '127.0.0.1:1,127.0.0.1:2' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('None of startup nodes is available');
    expect(Date.now() - t0).toBeLessThan(30_000);
  });

  it('runs 50 images through a worker process: all succeed, one createTask each, every key in one slot', async () => {
    worker = spawnUpscale(['worker'], env);
    await waitFor(() => worker!.stderr().includes('workers started') || worker!.child.exitCode !== null, { timeoutMs: 30_000, what: 'worker start' });
    expect(worker.child.exitCode, worker.stderr()).toBeNull();
    expect(isCluster(rt!.redis)).toBe(true);

    const items = Array.from({ length: IMAGES }, (_, i) => ({
      input: `${sim!.url}/sim/images/cl${i}-${40 + (i % 5)}x${30 + (i % 3)}.png`,
      model: i % 5 === 0 ? 'recraft/crisp-upscale' : 'topaz/image-upscale',
    }));
    expect(await enqueue(rt!, items, { batchId: 'cluster-50', factor: '2' })).toMatchObject({ enqueued: IMAGES, rejected: [] });
    const summary = await waitForBatch(rt!, 'cluster-50', 90_000);
    expect(summary.counts.succeeded).toBe(IMAGES);
    const stats = sim!.stats();
    expect(stats.createAccepted).toBe(IMAGES);
    expect(stats.duplicatedInputs).toEqual([]);
    expect(Object.values(stats.perInput).every((n) => n === 1)).toBe(true);

    // `upscale status` and `export` work against the cluster too.
    const status = await runUpscale(['status', '--batch', 'cluster-50', '--json'], env);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ total: IMAGES, counts: { succeeded: IMAGES } });

    // All of the run's keys sit on the node that owns the hash tag's slot; the other masters hold none.
    const slot = Number(await cluster!.servers[0]!.cli('cluster', 'keyslot', prefix));
    const perNode = await Promise.all(cluster!.servers.map(async (s) => Number((await s.cli('dbsize')).trim())));
    const owners = await Promise.all(cluster!.servers.map(async (s) => Number((await s.cli('cluster', 'countkeysinslot', String(slot))).trim())));
    expect(perNode.filter((n) => n > 0)).toHaveLength(1);
    expect(owners.reduce((a, b) => a + b, 0)).toBe(perNode.reduce((a, b) => a + b, 0));

    expect((await worker.stop('SIGTERM')).code).toBe(0);
    expect(worker.stderr()).not.toMatch(/CROSSSLOT|MOVED|"level":50/);
  });
});
