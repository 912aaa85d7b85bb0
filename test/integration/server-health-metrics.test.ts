import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/log.js';
import { getStatus } from '../../src/control/index.js';
import { pauseLane, setPauseReason, type PauseReason } from '../../src/queue/pause-reason.js';
import { renderStatus } from '../../src/results/status-view.js';
import { createRuntime } from '../../src/runtime.js';
import { buildApp } from '../../src/server/app.js';
import { imageId, startBench, submitData, type Bench } from './server-fixtures.js';

describe('health and metrics', () => {
  let b: Bench | undefined;
  afterEach(async () => {
    await b?.close();
    b = undefined;
  });

  it('/healthz answers 200 with the lanes and their pause reasons', async () => {
    b = await startBench();
    await pauseLane(b.rt.redis, b.rt.store.keys, b.rt.queues.submit, 'submit', {
      code: '402',
      message: 'insufficient credits',
    });
    const res = await b.app.inject({ method: 'GET', url: '/healthz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      ok: true,
      redis: 'up',
      lanes: {
        submit: { paused: true, reason: { code: '402', message: 'insufficient credits' } },
        poll: { paused: false, reason: null },
        download: { paused: false },
      },
    });
  });

  it('a pause that lifts itself shows its reason and its next probe in /metrics, /healthz, the batches page and status', async () => {
    b = await startBench();
    const probeAt = Date.now() + 3 * 3_600_000;
    const message = "the API key's daily limit is reached (433: The current number of points used by apiKey has exceeded the daily limit). The lane probes again when the daily limit resets (KIE_DAILY_RESET), or run `upscale resume` after raising it.";
    const reason: PauseReason = { code: '433', message, at: Date.now() - 60_000, source: 'poll', probe: { kind: 'image', at: probeAt, tries: 1, running: false, last: '433 The current number of points used by apiKey has exceeded the daily limit' } };
    await setPauseReason(b.rt.redis, b.rt.store.keys, 'submit', reason);
    await b.rt.queues.submit.pause();
    const metrics = (await b.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toContain('upscale_lane_pause_reason{lane="submit",code="433",probing="no"} 1\n');
    expect(metrics).toContain(`upscale_lane_next_probe_timestamp_seconds{lane="submit"} ${Math.round(probeAt / 1000)}\n`);
    expect(metrics).not.toMatch(/upscale_lane_pause_reason\{[^}]*lane="poll"/);
    expect((await b.app.inject({ method: 'GET', url: '/healthz' })).json()).toMatchObject({ lanes: { submit: { paused: true, reason } } });
    const page = (await b.app.inject({ method: 'GET', url: '/dashboard/batches' })).body;
    expect(page).toContain('433: the API key&#39;s daily limit is reached (433: The current number of points used by apiKey has exceeded the daily limit)');
    expect(page).toMatch(/<p class="probe">resumes on its own: next probe \(one image\) at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(in (2h59m|3h00m); 1 tried, last met 433 The current/);
    const status = renderStatus(await getStatus(b.rt), { now: Date.now() });
    expect(status).toMatch(/submit lane PAUSED: the API key's daily limit is reached \(433: .* \(since .*\) — resumes on its own: next probe \(one image\) at .* UTC \(in (2h59m|3h00m); 1 tried/);
    // While the probe runs the lane is not paused, and says so.
    await setPauseReason(b.rt.redis, b.rt.store.keys, 'submit', { ...reason, probe: { ...reason.probe!, running: true, startedAt: Date.now() } });
    await b.rt.queues.submit.resume();
    expect((await b.app.inject({ method: 'GET', url: '/metrics' })).body).toContain('upscale_lane_pause_reason{lane="submit",code="433",probing="yes"} 1\n');
    expect(renderStatus(await getStatus(b.rt), { now: Date.now() })).toMatch(/submit lane PROBING \(paused by 433\): probing with one image now; 1 tried/);
  });

  it('/healthz answers 503 and /metrics says redis down when Redis does not answer', async () => {
    const rt = createRuntime(
      loadConfig({}, { REDIS_URL: 'redis://127.0.0.1:1', UPSCALE_PREFIX: 'nowhere', LOG_LEVEL: 'silent' }),
      { log: createLogger({ level: 'silent' }) },
    );
    const app = buildApp(rt, { healthOptions: { timeoutMs: 300 }, metricsOptions: { timeoutMs: 300 } });
    try {
      const t0 = Date.now();
      const res = await app.inject({ method: 'GET', url: '/healthz' });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toEqual({
        ok: false,
        redis: 'down',
        lanes: {
          submit: { paused: null, reason: null },
          poll: { paused: null, reason: null },
          download: { paused: null, reason: null },
        },
      });
      expect(Date.now() - t0).toBeLessThan(2000);
      const metrics = await app.inject({ method: 'GET', url: '/metrics' });
      expect(metrics.statusCode).toBe(200);
      expect(metrics.body).toContain('upscale_redis_up 0\n');
    } finally {
      await app.close();
      await rt.close();
    }
  });

  it('/metrics renders the counters hash with HELP and TYPE lines, histograms in bucket order', async () => {
    b = await startBench();
    const key = b.rt.store.keys.counters;
    await b.rt.redis.hset(key, {
      'upscale_kie_calls_total{code="200",endpoint="createTask"}': '7',
      'upscale_kie_calls_total{code="429",endpoint="createTask"}': '2',
      'upscale_slowdowns_total{lane="submit",reason="rate-limit"}': '2',
      'upscale_rate_limit_wait_seconds_total{lane="submit"}': '1.5',
      'upscale_task_duration_seconds_bucket{le="10",model="m"}': '3',
      'upscale_task_duration_seconds_bucket{le="+Inf",model="m"}': '4',
      'upscale_task_duration_seconds_bucket{le="2",model="m"}': '1',
      'upscale_task_duration_seconds_sum{model="m"}': '31.5',
      'upscale_task_duration_seconds_count{model="m"}': '4',
    });
    await b.rt.queues.submit.add('submit', submitData(imageId(1)), { jobId: imageId(1) });
    const res = await b.app.inject({ method: 'GET', url: '/metrics' });
    expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = res.body;
    expect(text).toContain(
      '# TYPE upscale_kie_calls_total counter\nupscale_kie_calls_total{code="200",endpoint="createTask"} 7\nupscale_kie_calls_total{code="429",endpoint="createTask"} 2\n',
    );
    expect(text).toContain('upscale_rate_limit_wait_seconds_total{lane="submit"} 1.5\n');
    expect(text).toContain(
      '# TYPE upscale_task_duration_seconds histogram\n' +
        'upscale_task_duration_seconds_bucket{le="2",model="m"} 1\n' +
        'upscale_task_duration_seconds_bucket{le="10",model="m"} 3\n' +
        'upscale_task_duration_seconds_bucket{le="+Inf",model="m"} 4\n' +
        'upscale_task_duration_seconds_sum{model="m"} 31.5\n' +
        'upscale_task_duration_seconds_count{model="m"} 4\n',
    );
    expect(text).toContain('upscale_queue_jobs{lane="submit",state="waiting"} 1\n');
    expect(text).toContain('upscale_lane_paused{lane="submit"} 0\n');
    // every sample line belongs to a family declared by a TYPE line before it
    const declared = new Set<string>();
    for (const line of text.trim().split('\n')) {
      const type = /^# TYPE (\S+) (counter|gauge|histogram|untyped)$/.exec(line);
      if (type) declared.add(type[1]!);
      if (line.startsWith('#')) continue;
      const name = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line)![1]!;
      expect(
        [name, name.replace(/_(bucket|sum|count)$/, '')].some((n) => declared.has(n)),
        line,
      ).toBe(true);
      expect(line).toMatch(/ -?\d+(\.\d+)?(e[+-]?\d+)?$/);
    }
  });

  it('switched-off parts are not served', async () => {
    b = await startBench({}, { dashboard: false, metrics: false });
    expect((await b.app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(404);
    expect((await b.app.inject({ method: 'GET', url: '/dashboard' })).statusCode).toBe(404);
    expect((await b.app.inject({ method: 'GET', url: '/api/batches' })).statusCode).toBe(404);
    expect((await b.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    const cb = await startBench({}, { callbacks: false });
    try {
      expect(
        (await cb.app.inject({ method: 'POST', url: `/callbacks/kie/${imageId(1)}?t=x`, payload: '{}' }))
          .statusCode,
      ).toBe(404);
    } finally {
      await cb.close();
    }
  });
});
