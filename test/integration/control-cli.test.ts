/** Smoke tests of `upscale status|pause|resume|retry|cancel` as separate processes, against real Redis. */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { pause, pauseBatch, resume } from '../../src/control/index.js';
import { submitJobId } from '../../src/queue/identity.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { deletePrefix, freshPrefix, testRedisUrl, waitFor } from '../helpers/redis.js';
import { spawnUpscale } from '../helpers/processes.js';

const MODEL = 'topaz/image-upscale' as const;
const BATCH = 'b-cli';
const id = (n: number) => n.toString(16).padStart(24, '0');

/** A running `upscale` command; `done` resolves with its exit code and whole output. */
function startCli(args: string[], env: Record<string, string>) {
  const p = spawnUpscale(args, { LOG_LEVEL: 'silent', ...env });
  return { child: p.child, out: () => p.stdout(), done: p.exited.then(({ code }) => ({ code, stdout: p.stdout(), stderr: p.stderr() })) };
}

const runCli = (args: string[], env: Record<string, string>) => startCli(args, env).done;

// Each run starts a Node process (about 3 s of imports); allow for a loaded machine.
describe('upscale status / pause / resume / retry / cancel (CLI)', { timeout: 180_000 }, () => {
  let rt: Runtime;
  let prefix: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    prefix = freshPrefix('cli');
    env = { REDIS_URL: testRedisUrl(), UPSCALE_PREFIX: prefix };
    rt = createRuntime(loadConfig({}, { ...env, LOG_LEVEL: 'silent' }));
    const images = [1, 2, 3, 4].map((n) => ({ jobId: id(n), input: `https://img.test/${n}.png`, model: MODEL, factor: '2' as const }));
    await rt.store.createRecords(BATCH, images);
    await rt.store.transition(BATCH, id(1), { state: 'failed', failCode: '422', failMsg: 'bad' });
    await rt.store.transition(BATCH, id(2), { state: 'succeeded', creditsConsumed: 20 });
    await rt.store.transition(BATCH, id(3), { state: 'polling', taskId: 't3' });
    await rt.queues.submit.add('submit', { jobId: id(4), batchId: BATCH, input: 'x', model: MODEL, factor: '2', generation: 0 }, { jobId: id(4) });
  });
  afterAll(async () => {
    await rt.close();
    await deletePrefix(testRedisUrl(), prefix);
  });

  it('status --json prints the whole summary of a batch, times as Unix ms', async () => {
    const r = await runCli(['status', '--batch', BATCH, '--json'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(Object.keys(s).sort()).toEqual(
      [
        'batchId', 'total', 'counts', 'creditsConsumed', 'createdAt', 'startedAt', 'updatedAt', 'finishedAt', 'ambiguousSubmits', 'throughputPerMinute', 'etaSeconds', 'noEta',
        // the batch's lifecycle (finalizer, deadline, pilot) and its notifications
        'downloadsPending', 'downloadsFailed', 'finalizedAt', 'epoch', 'resultsAt', 'deadlineAt', 'pilot', 'pilotApprovedAt', 'notifications',
        // its place in the batch scheduler
        'priority', 'gate',
      ].sort(),
    );
    expect(s).toMatchObject({ batchId: BATCH, total: 4, creditsConsumed: 20, counts: { waiting: 1, held: 0, submitting: 0, polling: 1, succeeded: 1, failed: 1, timed_out: 0, cancelled: 0, expired: 0 } });
    expect(typeof s.updatedAt).toBe('number');
  });

  it('status without --batch lists batches and lanes; an unknown batch exits 1', async () => {
    const [all, human, unknown] = await Promise.all([
      runCli(['status', '--json'], env),
      runCli(['status', '--batch', BATCH], env),
      runCli(['status', '--batch', 'nope'], env),
    ]);
    expect(all.code).toBe(0);
    const j = JSON.parse(all.stdout) as { batches: { batchId: string }[]; lanes: Record<string, { paused: boolean }> };
    expect(j.batches.map((b) => b.batchId)).toEqual([BATCH]);
    expect(Object.keys(j.lanes)).toEqual(['submit', 'poll', 'download']);

    expect(human.code).toBe(0);
    expect(human.stdout).toContain(`batch ${BATCH}`);
    expect(human.stdout).toContain('2/4 (50.0%)');

    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no batch named nope (run `upscale status` to list batches)');
  });

  it('pause and resume report what they did', async () => {
    const p = await runCli(['pause', '--json'], env);
    expect(p.code).toBe(0);
    expect(JSON.parse(p.stdout)).toMatchObject({ paused: [{ lane: 'submit', alreadyPaused: false, reason: { code: 'manual' } }] });
    expect(await rt.queues.submit.isPaused()).toBe(true);
    const r = await runCli(['resume'], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Resumed the submit lane (was paused by upscale pause)');
    expect(await rt.queues.submit.isPaused()).toBe(false);
  });

  it('retry and cancel print counts; an unknown batch exits 1', async () => {
    const [retried, unknown] = await Promise.all([runCli(['retry', '--batch', BATCH, '--json'], env), runCli(['retry', '--batch', 'nope'], env)]);
    expect(retried.code).toBe(0);
    expect(JSON.parse(retried.stdout)).toEqual({ batchId: BATCH, retried: 1, skipped: 3 });
    expect(await rt.queues.submit.getJob(submitJobId(id(1), 1))).toBeDefined();

    const cancelled = await runCli(['cancel', '--batch', BATCH], env);
    expect(cancelled.code).toBe(0);
    expect(cancelled.stdout).toContain(`Cancelled 2 images of batch ${BATCH}`);
    expect(cancelled.stdout).toContain('1 image already submitted or being submitted is followed to its end');

    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no batch named nope');
  });

  it('retry names whatever holds what it put back (the batch pause, a lane it needs), with the command that lifts it; downloads ignore a batch pause', async () => {
    for (const [batch, n] of [['b-held', 11], ['b-lane', 12]] as const) {
      await rt.store.createRecords(batch, [{ jobId: id(n), input: `https://img.test/${n}.png`, model: MODEL, factor: '2' }]);
      await rt.store.transition(batch, id(n), { state: 'failed', failCode: '500', failMsg: 'server error' });
    }
    // b-held also has an output whose download failed for good.
    await rt.store.createRecords('b-held', [{ jobId: id(13), input: 'https://img.test/13.png', model: MODEL, factor: '2' }]);
    await rt.store.transition('b-held', id(13), { state: 'succeeded', resultUrls: ['https://res.test/13.png'], download: 'failed', outputProblem: 'HTTP 404' });
    await pauseBatch(rt, 'b-held', { reason: 'checking the first outputs' });
    await pause(rt, { lanes: ['poll'] });
    const outEnv = { ...env, OUTPUT_DIR: await mkdtemp(join(tmpdir(), 'cli-out-')) };
    try {
      const [held, lane, downloads] = await Promise.all([
        runCli(['retry', '--batch', 'b-held'], env),
        runCli(['retry', '--batch', 'b-lane', '--json'], env),
        runCli(['retry', '--batch', 'b-held', '--downloads', '--json'], outEnv),
      ]);
      expect(held.code).toBe(0);
      expect(held.stdout).toContain('Retried 1 failed or timed-out image of batch b-held');
      expect(held.stderr.trim()).toBe(
        'warning: the retried images of batch b-held do not move yet: the batch is paused (checking the first outputs): `upscale resume --batch b-held`; ' +
          'the poll lane is paused (manual): `upscale resume --lanes poll`',
      );
      expect(lane.code).toBe(0);
      expect(JSON.parse(lane.stdout)).toEqual({
        batchId: 'b-lane',
        retried: 1,
        skipped: 0,
        batchWarnings: ['the retried images of batch b-lane do not move yet: the poll lane is paused (manual): `upscale resume --lanes poll`'],
      });
      // A batch pause does not hold downloads (a fresh user was told they would wait; they ran): no warning.
      expect(downloads.code, downloads.stderr).toBe(0);
      expect(JSON.parse(downloads.stdout)).toEqual({ batchId: 'b-held', queued: 1, skipped: 1 });
      await pause(rt, { lanes: ['download'] });
      await rt.store.transition('b-held', id(13), { download: 'failed', outputProblem: 'HTTP 404' });
      const heldDownloads = await runCli(['retry', '--batch', 'b-held', '--downloads'], outEnv);
      expect(heldDownloads.stderr.trim()).toBe('warning: the missing outputs of batch b-held do not move yet: the download lane is paused (manual): `upscale resume --lanes download`');
    } finally {
      await resume(rt, { lanes: ['poll', 'download'] });
    }
    // Nothing paused: no warning.
    await rt.store.transition('b-lane', id(12), { state: 'failed', failCode: '500', failMsg: 'server error again' });
    const free = await runCli(['retry', '--batch', 'b-lane', '--json'], env);
    expect(JSON.parse(free.stdout)).toEqual({ batchId: 'b-lane', retried: 1, skipped: 0 });
  });

  it('status --watch prints a JSON line per tick until the batch is finished, and stops with 130 on SIGINT', async () => {
    await rt.store.createRecords('b-watch', [{ jobId: id(9), input: 'https://img.test/9.png', model: MODEL, factor: '2' }]);
    const watch = startCli(['status', '--batch', 'b-watch', '--json', '--watch', '--interval', '200ms'], env);
    const human = startCli(['status', '--watch', '--interval', '200ms'], env);
    // Two CLI processes start at once: on a loaded machine that alone has taken over 20 s.
    await waitFor(() => watch.out().split('\n').length > 2, { what: 'two ticks of status --watch --json', timeoutMs: 90_000 });
    await waitFor(() => human.out().includes('lanes:'), { what: 'a first block of status --watch', timeoutMs: 90_000 });
    await rt.store.transition('b-watch', id(9), { state: 'succeeded' });
    const w = await watch.done;
    expect(w.code).toBe(0);
    const ticks = w.stdout.trim().split('\n').map((l) => JSON.parse(l) as { counts: { waiting: number; succeeded: number } });
    expect(ticks.length).toBeGreaterThanOrEqual(2);
    expect(ticks[0]!.counts.waiting).toBe(1);
    expect(ticks.at(-1)!.counts).toMatchObject({ waiting: 0, succeeded: 1 });
    // b-cli still has active images, so the listing watch runs until interrupted.
    human.child.kill('SIGINT');
    const h = await human.done;
    expect(h.code).toBe(130);
    expect(h.stdout).not.toContain('\x1b[2J');
  }, 200_000);
});
