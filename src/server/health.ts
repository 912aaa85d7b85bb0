/**
 * `GET /healthz`: `{ ok, redis: 'up'|'down', lanes: { submit: { paused, reason }, ... } }`, 200 when Redis answers
 * and 503 otherwise. A paused lane is reported but is not unhealthy: the server works, submission waits for
 * `upscale resume`. When Redis is down, `paused` and `reason` are null (unknown).
 */
import type { FastifyInstance } from 'fastify';
import { LANES, type Lane } from '../queue/names.js';
import type { PauseReason } from '../queue/pause-reason.js';
import type { Runtime } from '../runtime.js';
import { readLanes, withTimeout } from './lanes.js';

export interface HealthOptions {
  /** How long the check waits for Redis. @defaultValue `1000` ms */
  timeoutMs?: number;
}

export interface Health {
  ok: boolean;
  redis: 'up' | 'down';
  lanes: Record<Lane, { paused: boolean | null; reason: PauseReason | null }>;
}

export async function checkHealth(rt: Runtime, options: HealthOptions = {}): Promise<Health> {
  const timeoutMs = options.timeoutMs ?? 1000;
  const unknown = Object.fromEntries(
    LANES.map((l) => [l, { paused: null, reason: null }]),
  ) as Health['lanes'];
  try {
    await withTimeout(rt.redis.ping(), timeoutMs, 'redis ping');
  } catch {
    return { ok: false, redis: 'down', lanes: unknown };
  }
  try {
    const views = await withTimeout(readLanes(rt), timeoutMs, 'lane state');
    const lanes = Object.fromEntries(
      LANES.map((l) => [l, { paused: views[l].paused, reason: views[l].reason }]),
    ) as Health['lanes'];
    return { ok: true, redis: 'up', lanes };
  } catch {
    return { ok: true, redis: 'up', lanes: unknown };
  }
}

export function registerHealth(app: FastifyInstance, rt: Runtime, options: HealthOptions = {}): void {
  app.get('/healthz', async (_request, reply) => {
    const health = await checkHealth(rt, options);
    return reply
      .code(health.ok ? 200 : 503)
      .header('cache-control', 'no-store')
      .send(health);
  });
}
