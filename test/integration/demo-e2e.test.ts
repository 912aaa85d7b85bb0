import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DemoSetupError, findRedis, freePort } from '../../src/demo/index.js';
import { runUpscale } from '../helpers/processes.js';
import { testRedisUrl } from '../helpers/redis.js';

let out: string;
beforeAll(async () => {
  out = await mkdtemp(join(tmpdir(), 'demo-e2e-'));
});
afterAll(() => rm(out, { recursive: true, force: true }));

describe('upscale demo', () => {
  it('runs the whole pipeline, prints the table, writes the outputs, exits 0 and leaves no keys', { timeout: 150_000 }, async () => {
    const redisUrl = testRedisUrl();
    const res = await runUpscale(['demo', '--out', out, '--time-scale', '20'], { REDIS_URL: redisUrl });
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toMatch(/input\s+model\s+state\s+output\s+reason/);
    expect(res.stdout).toMatch(/local cat\.png 200×150\s+topaz ×2\s+succeeded\s+400×300/);
    expect(res.stdout).toMatch(/notimage\.jpg \(HTML\)\s+topaz ×2\s+failed\s+-\s+not an image/);
    expect(res.stdout).toMatch(/11 tasks created .* 3 local files uploaded/);
    expect(res.stdout).toMatch(/All 16 images ended as expected/);
    const prefix = /Redis prefix (demo-[0-9a-f]+)/.exec(res.stdout)?.[1];
    // The batch's folder; the store's probe object (.kie-upscale-probe) and its staging folder sit beside it.
    const [batch] = (await readdir(out, { withFileTypes: true })).filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name);
    const files = (await readdir(join(out, batch!))).filter((f) => !['demo.log', '.thumbs', 'results.jsonl', 'summary.json'].includes(f));
    expect(files).toHaveLength(11);
    const icon = files.find((f) => f.endsWith('-icon-96x96.webp'))!;
    expect(await sharp(join(out, batch!, icon)).metadata()).toMatchObject({ format: 'webp', width: 768, height: 768 });
    const client = new Redis(redisUrl);
    try {
      expect(prefix).toBeDefined();
      expect(await client.keys(`${prefix}:*`)).toEqual([]);
    } finally {
      client.disconnect();
    }
  });

  it('finds Redis: REDIS_URL must answer; else starts redis-server from PATH; else says how to get one', async () => {
    const nowhere = `redis://127.0.0.1:${await freePort()}`;
    await expect(findRedis({ REDIS_URL: nowhere })).rejects.toThrow(/does not answer/);
    await expect(findRedis({ PATH: '' }, nowhere)).rejects.toThrow(DemoSetupError);
    await expect(findRedis({ PATH: '' }, nowhere)).rejects.toThrow(/apt-get install redis-server[\s\S]*REDIS_URL=redis:\/\/HOST:6379/);
    const started = await findRedis({ PATH: process.env.PATH }, nowhere);
    try {
      expect(started.how).toMatch(/started .*redis-server on port \d+/);
      const client = new Redis(started.url);
      expect(await client.config('GET', 'appendonly')).toEqual(['appendonly', 'no']);
      client.disconnect();
    } finally {
      await started.stop();
    }
  });
});
