/**
 * A submit job whose run loses its BullMQ lock (a process starved of CPU misses its lock renewal; the stalled-job
 * check hands the job to a second run) must still send exactly one createTask. This is the flaky
 * pipeline-e2e failure (`submitAttempts` 2): reproduced here deterministically by deleting the lock while the
 * first run is held at a chosen point, as an expired lock would leave it.
 */
import { describe, expect, it } from 'vitest';
import { submitJobId } from '../../src/queue/identity.js';
import { defaultPrepareInput } from '../../src/worker/prepare-input.js';
import { waitFor } from '../helpers/redis.js';
import { enqueueDirect, localRigs, waitForRecords } from './preflight-fixtures.js';

const CREATE = '/api/v1/jobs/createTask';

describe('submit lane: a run that lost its lock never sends a second createTask', () => {
  const rigs = localRigs();
  it('the first run is waiting for createTask\'s answer when its lock is lost: the task exists, it is followed, not created again', async () => {
    const { rig, proxy } = await rigs.startProxied({ env: { OUTPUT_DIR: '', JOB_LOCK_DURATION: '1s' } });
    await rig.start({ concurrency: 4, lanes: ['submit', 'poll'] });
    proxy.holdNext(CREATE);
    const [jobId] = await enqueueDirect(rig.rt, 'lock-answer', [{ input: rig.image('la', 64, 48, 'png') }]);
    const sid = submitJobId(jobId!, 0);
    await waitFor(() => proxy.heldCount() === 1, { what: 'the first createTask to be held', timeoutMs: 30_000 });
    // The lock expires (as when its renewal came too late); the stalled check gives the job to a second run.
    await rig.rt.redis.del(`${rig.rt.config.prefix}:submit:${sid}:lock`);
    await waitFor(async () => (await rig.rt.queues.submit.getJobState(sid)) === 'delayed' || proxy.calls(CREATE) > 1, {
      what: 'the second run to start',
      timeoutMs: 30_000,
    });
    proxy.releaseAll();
    const [record] = await waitForRecords(rig.rt, 'lock-answer', { timeoutMs: 60_000 });
    expect(proxy.calls(CREATE)).toBe(1);
    expect(rig.sim.stats().createAccepted).toBe(1);
    expect(record).toMatchObject({ state: 'succeeded', submitAttempts: 1, ambiguousSubmits: 0 });
    expect(record!.taskId).toBe(rig.sim.tasks()[0]!.taskId);
  });

  it('the first run is still preparing when its lock is lost: only the run that took over sends', async () => {
    let release: (() => void) | undefined;
    let calls = 0;
    const { rig, proxy } = await rigs.startProxied({ env: { OUTPUT_DIR: '', JOB_LOCK_DURATION: '1s' } });
    const prepare = defaultPrepareInput(rig.rt);
    await rig.start({
      concurrency: 4,
      lanes: ['submit', 'poll'],
      prepareInput: async (data) => {
        const first = ++calls === 1;
        const prepared = await prepare(data);
        if (first) await new Promise<void>((resolve) => (release = resolve));
        return prepared;
      },
    });
    const [jobId] = await enqueueDirect(rig.rt, 'lock-prepare', [{ input: rig.image('lp', 64, 48, 'png') }]);
    const sid = submitJobId(jobId!, 0);
    await waitFor(() => release !== undefined, { what: 'the first run to be held in its preparation', timeoutMs: 30_000 });
    await rig.rt.redis.del(`${rig.rt.config.prefix}:submit:${sid}:lock`);
    // The second run prepares and sends; the first is released only after that answer is in.
    await waitFor(async () => (await rig.rt.store.getRecord('lock-prepare', jobId!))?.taskId, { what: 'the second run\'s task', timeoutMs: 30_000 });
    release!();
    const [record] = await waitForRecords(rig.rt, 'lock-prepare', { timeoutMs: 60_000 });
    expect(calls).toBe(2);
    expect(proxy.calls(CREATE)).toBe(1);
    expect(rig.sim.stats().createAccepted).toBe(1);
    expect(record).toMatchObject({ state: 'succeeded', submitAttempts: 1 });
  });
});
