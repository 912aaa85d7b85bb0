/**
 * The poll schedule's completion-time samples on a real Redis: recorded in memory and written in one pipeline per
 * second (or when the worker stops, `flush`), newest first, at most 200 per model, and read back by the schedule.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { PollSchedule } from '../../src/worker/poll-schedule.js';
import { deletePrefix, freshPrefix, testRedisUrl, waitFor } from '../helpers/redis.js';

const TOPAZ = 'topaz/image-upscale';
const RECRAFT = 'recraft/crisp-upscale';

let rt: Runtime;
let prefix: string;
let schedule: PollSchedule;

beforeEach(() => {
  prefix = freshPrefix('samples');
  rt = createRuntime(loadConfig({}, { REDIS_URL: testRedisUrl(), UPSCALE_PREFIX: prefix, LOG_LEVEL: 'silent' }));
  schedule = new PollSchedule(rt.redis, rt.store.keys, rt.queues.poll, {
    minIntervalMs: 2000,
    maxIntervalMs: 30_000,
    queryLimit: { max: 10, durationMs: 1000 },
    callbacks: false,
  });
});
afterEach(async () => {
  await rt.close();
  await deletePrefix(testRedisUrl(), prefix);
});

const stored = async (model: string) => (await rt.redis.lrange(rt.store.keys.durations(model), 0, -1)).map(Number);

describe('poll schedule samples', () => {
  it('writes a flush of several models in one go, newest first, rounded to ms; bad values are dropped', async () => {
    schedule.recordDuration(TOPAZ, 1000.4);
    schedule.recordDuration(RECRAFT, 500);
    schedule.recordDuration(TOPAZ, 2000);
    schedule.recordDuration(TOPAZ, Number.NaN);
    schedule.recordDuration(TOPAZ, -1);
    schedule.recordDuration(TOPAZ, 3000);
    // Nothing is written before the flush.
    expect(await stored(TOPAZ)).toEqual([]);
    await schedule.flush();
    expect(await stored(TOPAZ)).toEqual([3000, 2000, 1000]);
    expect(await stored(RECRAFT)).toEqual([500]);
    // A flush with nothing new writes nothing and keeps what is there.
    await schedule.flush();
    expect(await stored(TOPAZ)).toEqual([3000, 2000, 1000]);
  });

  it('keeps the latest 200 per model, across flushes and within one', async () => {
    for (let i = 1; i <= 150; i++) schedule.recordDuration(TOPAZ, i);
    await schedule.flush();
    for (let i = 151; i <= 450; i++) schedule.recordDuration(TOPAZ, i);
    await schedule.flush();
    const list = await stored(TOPAZ);
    expect(list).toHaveLength(200);
    expect(list[0]).toBe(450);
    expect(list.at(-1)).toBe(251);
  });

  it('writes by itself within about a second, and the schedule learns from what it wrote', async () => {
    for (let i = 1; i <= 10; i++) schedule.recordDuration(RECRAFT, i * 1000);
    await waitFor(async () => (await stored(RECRAFT)).length === 10, { timeoutMs: 5000, what: 'the timed flush' });
    // 10 samples (at least 8): quantiles come from them, not kie.ai's advice.
    expect(await schedule.quantilesOf(RECRAFT)).toEqual([6000, 8000, 10_000, 10_000, 10_000]);
  });
});
