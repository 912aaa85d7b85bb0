import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { enqueueFile } from '../../src/producer/index.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { deletePrefix, freshPrefix, testRedisUrl } from '../helpers/redis.js';

const LINES = 100_000;
let dir: string;
let file: string;
let prefix: string;
let rt: Runtime;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'producer-large-'));
  file = join(dir, 'large.txt');
  const out = createWriteStream(file);
  for (let i = 0; i < LINES; i += 1000) {
    const block = Array.from(
      { length: 1000 },
      (_, k) => `https://images.example.com/set/${i + k}/photo-${i + k}.png\n`,
    ).join('');
    if (!out.write(block)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  prefix = freshPrefix('large');
  rt = createRuntime(
    loadConfig({}, { REDIS_URL: testRedisUrl(), UPSCALE_PREFIX: prefix, LOG_LEVEL: 'silent' }),
  );
});

afterAll(async () => {
  await rt.close();
  await deletePrefix(testRedisUrl(), prefix);
  rmSync(dir, { recursive: true, force: true });
});

it(
  `enqueues a ${LINES.toLocaleString('en-US')}-line file completely, in bulk chunks`,
  { timeout: 60_000 },
  async () => {
    let reports = 0;
    const started = performance.now();
    const result = await enqueueFile(rt, file, {
      batchId: 'large',
      model: 'topaz/image-upscale',
      onProgress: () => (reports += 1),
    });
    const seconds = (performance.now() - started) / 1000;
    console.info(
      `enqueued ${LINES} lines in ${seconds.toFixed(1)} s: ${Math.round(LINES / seconds)} lines/s`,
    );
    expect(result).toEqual({ batchId: 'large', enqueued: LINES, duplicates: 0, rejected: [], warnings: [] });
    expect(reports).toBeGreaterThanOrEqual(LINES / 1000); // one store per chunk of 1000
    // Submit jobs wait held by the batch scheduler (delayed in BullMQ) until admitted, a few at a time.
    const counts = await rt.queues.submit.getJobCounts('waiting', 'delayed');
    expect((counts.waiting ?? 0) + (counts.delayed ?? 0)).toBe(LINES);
    expect(await rt.redis.hlen(rt.store.keys.records('large'))).toBe(LINES);
    expect((await rt.store.getSummary('large'))?.counts.waiting).toBe(LINES);
  },
);
