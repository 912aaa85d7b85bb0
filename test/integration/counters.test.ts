/** Counters: one series per name and label set, whatever order the labels come in; histograms are cumulative. */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { Counters } from '../../src/metrics/counters.js';
import { freshPrefix, testRedisUrl } from '../helpers/redis.js';

describe('Counters', () => {
  const redis = new Redis(testRedisUrl());
  afterAll(() => redis.disconnect());

  it('adds up one series per label set, in any label order, and escapes values', async () => {
    const key = `${freshPrefix()}:counters`;
    const c = new Counters(redis, key);
    c.inc('upscale_images_finished_total', { state: 'succeeded', model: 'topaz/image-upscale' });
    c.inc('upscale_images_finished_total', { model: 'topaz/image-upscale', state: 'succeeded' }, 2);
    c.inc('upscale_images_finished_total', { model: 'a"b', state: 'failed' });
    c.inc('upscale_images_finished_total', { model: 'a"b', state: 'failed' });
    c.inc('upscale_submissions_total');
    // The same buckets twice (the names kept from the first call), then another label set.
    const buckets = [1, 2, 3, 4];
    c.observe('upscale_polls_per_task', 3, buckets, { model: 'm' });
    c.observe('upscale_polls_per_task', 1.5, buckets, { model: 'm' });
    c.observe('upscale_polls_per_task', 9, buckets, { model: 'n' });
    await c.flush();
    expect(Object.fromEntries(await c.read())).toEqual({
      'upscale_images_finished_total{model="topaz/image-upscale",state="succeeded"}': 3,
      'upscale_images_finished_total{model="a_b",state="failed"}': 2,
      upscale_submissions_total: 1,
      'upscale_polls_per_task_bucket{le="2",model="m"}': 1,
      'upscale_polls_per_task_bucket{le="3",model="m"}': 2,
      'upscale_polls_per_task_bucket{le="4",model="m"}': 2,
      'upscale_polls_per_task_bucket{le="+Inf",model="m"}': 2,
      'upscale_polls_per_task_sum{model="m"}': 4.5,
      'upscale_polls_per_task_count{model="m"}': 2,
      'upscale_polls_per_task_bucket{le="+Inf",model="n"}': 1,
      'upscale_polls_per_task_sum{model="n"}': 9,
      'upscale_polls_per_task_count{model="n"}': 1,
    });
    await redis.del(key);
  });
});
