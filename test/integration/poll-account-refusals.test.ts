/**
 * 402 and 433 met while *polling* (issue 11 point 1: account refusals pause submission "from either lane"): kie.ai
 * answers a recordInfo with HTTP 200 `{"code":433,...}` (or 402). Submission pauses with the reason and its source;
 * polling goes on (it follows tasks already paid for), so the tasks in flight end as kie decided; nothing more is
 * sent until the control API's resume, and then every image ends, each paid once. The lanes run in this process;
 * a loopback proxy in front of the simulator gives the refusals the simulator does not.
 */
import { describe, expect, it } from 'vitest';
import { resume } from '../../src/control/index.js';
import { getPauseReason } from '../../src/queue/pause-reason.js';
import { waitFor } from '../helpers/redis.js';
import { enqueueDirect, localRigs, waitForRecords } from './preflight-fixtures.js';

const CREATE = '/api/v1/jobs/createTask';
const RECORD_INFO = '/api/v1/jobs/recordInfo';

const REFUSALS = [
  { code: 433, msg: 'The current number of points used by apiKey has exceeded the daily limit', reason: /daily limit is reached \(433: The current number/, probe: 'image' },
  { code: 402, msg: 'Credits insufficient', reason: /insufficient credits \(402: Credits insufficient\)/, probe: 'image' },
] as const;

describe('an account refusal met while polling', () => {
  const rigs = localRigs();

  it.each(REFUSALS)('recordInfo answering code $code pauses submission only; the tasks in flight are followed to their end; resume finishes the batch', async (refusal) => {
    const { rig, proxy } = await rigs.startProxied({
      timeScale: 10,
      // Two sends per 6 s: after the first two, the next send is seconds away while their tasks (4–6 s) are polled.
      env: { OUTPUT_DIR: '', KIE_CREATE_LIMIT: '2/6000ms', PROBE_COOLDOWN: '10m', CREDITS_CHECK_INTERVAL: '1h' },
      sim: { latency: { 'topaz/image-upscale': { medianMs: 40_000, p95Ms: 60_000 } } },
    });
    await rig.start({ concurrency: 4, lanes: ['submit', 'poll'] });
    const batch = `refused-${refusal.code}`;
    await enqueueDirect(rig.rt, batch, Array.from({ length: 4 }, (_, i) => ({ input: rig.image(`${batch}-${i}`, 40 + i, 30) })));
    await waitFor(() => rig.sim.stats().createAccepted >= 2, { timeoutMs: 20_000, what: 'the first 2 tasks created' });
    proxy.intercept((_method, path) => (path === RECORD_INFO ? { status: 200, body: { code: refusal.code, msg: refusal.msg, data: null } } : null));
    const reason = await waitFor(() => getPauseReason(rig.rt.redis, rig.rt.store.keys, 'submit'), { timeoutMs: 10_000, what: `submission paused by the ${refusal.code}` });
    proxy.intercept(null);
    expect(reason).toMatchObject({ code: String(refusal.code), source: 'poll', probe: { kind: refusal.probe } });
    expect(reason.message).toMatch(refusal.reason);
    expect(await rig.rt.queues.submit.isPaused()).toBe(true);
    const createsAtPause = proxy.calls(CREATE);
    expect(createsAtPause).toBe(2);

    // Polling was not paused: the two tasks in flight end succeeded while submission stays paused.
    const during = await waitFor(async () => {
      const s = await rig.rt.store.getSummary(batch);
      return s && s.counts.succeeded === 2 ? s : null;
    }, { timeoutMs: 30_000, what: 'the 2 tasks in flight to end' });
    expect(during.counts).toMatchObject({ waiting: 2, failed: 0, polling: 0 });
    expect(await rig.rt.queues.poll.isPaused()).toBe(false);
    expect(await getPauseReason(rig.rt.redis, rig.rt.store.keys, 'poll')).toBeNull();
    expect(proxy.calls(CREATE)).toBe(createsAtPause);
    expect(await getPauseReason(rig.rt.redis, rig.rt.store.keys, 'submit')).toMatchObject({ code: String(refusal.code) });

    const resumed = await resume(rig.rt);
    expect(resumed.resumed.map((r) => r.lane)).toEqual(['submit']);
    const records = await waitForRecords(rig.rt, batch, { timeoutMs: 60_000 });
    expect(records.map((r) => r.state)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded']);
    expect(records.every((r) => r.submitAttempts === 1)).toBe(true);
    expect(rig.sim.stats().createAccepted).toBe(4);
    expect(rig.sim.stats().duplicatedInputs).toEqual([]);
  });
});
