/**
 * `GET /metrics`: Prometheus text. Gauges read at scrape time (jobs per lane and state, paused and slowed-down
 * lanes, Redis up) and every counter and histogram the workers (and this server) keep in Redis. When Redis does
 * not answer, the scrape still succeeds with `upscale_redis_up 0`.
 */
import type { FastifyInstance } from 'fastify';
import type { Counters } from '../metrics/counters.js';
import { LANES } from '../queue/names.js';
import type { Runtime } from '../runtime.js';
import { JOB_STATES, readLanes, withTimeout } from './lanes.js';
import { CONTENT_TYPE, renderCounters, renderGauges, type Sample } from './metrics-text.js';

export interface MetricsOptions {
  /** How long a scrape waits for Redis. @defaultValue `2000` ms */
  timeoutMs?: number;
}

/** Everything /metrics shows, as text. */
export async function collectMetrics(
  rt: Runtime,
  counters: Counters,
  options: MetricsOptions = {},
): Promise<string> {
  const timeoutMs = options.timeoutMs ?? 2000;
  try {
    // This process' own increments (callbacks) first, so a scrape right after a callback shows it.
    await withTimeout(counters.flush(), timeoutMs, 'counter flush').catch(() => undefined);
    const [series, lanes] = await withTimeout(
      Promise.all([counters.read(), readLanes(rt)]),
      timeoutMs,
      'metrics read',
    );
    const samples: Sample[] = [{ name: 'upscale_redis_up', value: 1 }];
    for (const lane of LANES) {
      for (const state of JOB_STATES)
        samples.push({
          name: 'upscale_queue_jobs',
          labels: { lane, state },
          value: lanes[lane].counts[state],
        });
    }
    for (const lane of LANES)
      samples.push({ name: 'upscale_lane_paused', labels: { lane }, value: lanes[lane].paused ? 1 : 0 });
    for (const lane of LANES) {
      const r = lanes[lane].reason;
      if (!r) continue;
      samples.push({ name: 'upscale_lane_pause_reason', labels: { lane, code: r.code, probing: r.probe?.running ? 'yes' : 'no' }, value: 1 });
      if (r.probe) samples.push({ name: 'upscale_lane_next_probe_timestamp_seconds', labels: { lane }, value: Math.round(r.probe.at / 1000) });
    }
    for (const lane of LANES)
      samples.push({
        name: 'upscale_lane_slowed_down',
        labels: { lane },
        value: lanes[lane].slowedDown ? 1 : 0,
      });
    return renderGauges(samples) + renderCounters(series);
  } catch {
    return renderGauges([{ name: 'upscale_redis_up', value: 0 }]);
  }
}

export function registerMetrics(
  app: FastifyInstance,
  rt: Runtime,
  counters: Counters,
  options: MetricsOptions = {},
): void {
  app.get('/metrics', async (_request, reply) => {
    const text = await collectMetrics(rt, counters, options);
    return reply.type(CONTENT_TYPE).header('cache-control', 'no-store').send(text);
  });
}
