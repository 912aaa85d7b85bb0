/**
 * A submit job whose run loses its BullMQ lock (a process starved of CPU misses its lock renewal; the stalled-job
 * check hands the job to a second run) must still send exactly one createTask. This is the flaky
 * pipeline-e2e failure (`submitAttempts` 2): reproduced here deterministically by deleting the lock while the
 * first run is held at a chosen point, as an expired lock would leave it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { submitJobId } from '../../src/queue/identity.js';
import { defaultPrepareInput } from '../../src/worker/prepare-input.js';
import { waitFor } from '../helpers/redis.js';
import { enqueueDirect, startLocalRig, waitForRecords, type LocalRig } from './preflight-fixtures.js';
import { listenLoopback } from '../helpers/listen.js';

/** A loopback proxy in front of the simulator that can hold createTask answers (the task already exists). */
async function startHoldingProxy(target: string) {
  let holdNext = 0;
  const held: (() => void)[] = [];
  let creates = 0;
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const isCreate = req.method === 'POST' && (req.url ?? '').startsWith('/api/v1/jobs/createTask');
        if (isCreate) creates++;
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && k !== 'host' && k !== 'content-length') headers[k] = v;
        const upstream = await fetch(`${target}${req.url ?? '/'}`, {
          method: req.method ?? 'GET',
          headers,
          ...(chunks.length > 0 ? { body: Buffer.concat(chunks) } : {}),
        });
        const body = Buffer.from(await upstream.arrayBuffer());
        if (isCreate && holdNext > 0) {
          holdNext--;
          await new Promise<void>((resolve) => held.push(resolve));
        }
        res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' });
        res.end(body);
      })().catch(() => res.destroy());
    });
  });
  await listenLoopback(server);
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    creates: () => creates,
    holdNextCreate() {
      holdNext++;
    },
    heldCount: () => held.length,
    releaseAll() {
      for (const r of held.splice(0)) r();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

type Proxy = Awaited<ReturnType<typeof startHoldingProxy>>;

describe('submit lane: a run that lost its lock never sends a second createTask', () => {
  let rig: LocalRig | undefined;
  let proxy: Proxy | undefined;
  afterEach(async () => {
    proxy?.releaseAll();
    await rig?.stop();
    await proxy?.close();
    rig = undefined;
    proxy = undefined;
  });
  it('the first run is waiting for createTask\'s answer when its lock is lost: the task exists, it is followed, not created again', async () => {
    rig = await startLocalRig({ env: { OUTPUT_DIR: '', JOB_LOCK_DURATION: '1s' }, kieProxy: (simUrl) => startHoldingProxy(simUrl).then((p) => ((proxy = p), p.url)) });
    await rig.start({ concurrency: 4, lanes: ['submit', 'poll'] });
    proxy!.holdNextCreate();
    const [jobId] = await enqueueDirect(rig.rt, 'lock-answer', [{ input: rig.image('la', 64, 48, 'png') }]);
    const sid = submitJobId(jobId!, 0);
    await waitFor(() => proxy!.heldCount() === 1, { what: 'the first createTask to be held', timeoutMs: 30_000 });
    // The lock expires (as when its renewal came too late); the stalled check gives the job to a second run.
    await rig.rt.redis.del(`${rig.rt.config.prefix}:submit:${sid}:lock`);
    await waitFor(async () => (await rig!.rt.queues.submit.getJobState(sid)) === 'delayed' || proxy!.creates() > 1, {
      what: 'the second run to start',
      timeoutMs: 30_000,
    });
    proxy!.releaseAll();
    const [record] = await waitForRecords(rig.rt, 'lock-answer', { timeoutMs: 60_000 });
    expect(proxy!.creates()).toBe(1);
    expect(rig.sim.stats().createAccepted).toBe(1);
    expect(record).toMatchObject({ state: 'succeeded', submitAttempts: 1, ambiguousSubmits: 0 });
    expect(record!.taskId).toBe(rig.sim.tasks()[0]!.taskId);
  });

  it('the first run is still preparing when its lock is lost: only the run that took over sends', async () => {
    let release: (() => void) | undefined;
    let calls = 0;
    rig = await startLocalRig({ env: { OUTPUT_DIR: '', JOB_LOCK_DURATION: '1s' }, kieProxy: (simUrl) => startHoldingProxy(simUrl).then((p) => ((proxy = p), p.url)) });
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
    await waitFor(async () => (await rig!.rt.store.getRecord('lock-prepare', jobId!))?.taskId, { what: 'the second run\'s task', timeoutMs: 30_000 });
    release!();
    const [record] = await waitForRecords(rig.rt, 'lock-prepare', { timeoutMs: 60_000 });
    expect(calls).toBe(2);
    expect(proxy!.creates()).toBe(1);
    expect(rig.sim.stats().createAccepted).toBe(1);
    expect(record).toMatchObject({ state: 'succeeded', submitAttempts: 1 });
  });
});
