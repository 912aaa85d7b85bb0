/** `upscale enqueue --priority`, `upscale pause|resume --batch`, `upscale priority` as separate processes, on real Redis. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { enqueue } from '../../src/producer/index.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { spawnUpscale } from '../helpers/processes.js';
import { deletePrefix, freshPrefix, testRedisUrl } from '../helpers/redis.js';

async function runCli(args: string[], env: Record<string, string>) {
  const p = spawnUpscale(args, { LOG_LEVEL: 'silent', ...env });
  const { code } = await p.exited;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

describe('batch priority and pause (CLI)', { timeout: 480_000 }, () => {
  let rt: Runtime;
  let prefix: string;
  let env: Record<string, string>;

  beforeAll(() => {
    prefix = freshPrefix('fcli');
    env = { REDIS_URL: testRedisUrl(), UPSCALE_PREFIX: prefix };
    rt = createRuntime(loadConfig({}, { ...env, LOG_LEVEL: 'silent' }));
  });
  afterAll(async () => {
    await rt.close();
    await deletePrefix(testRedisUrl(), prefix);
  });

  it('enqueue --priority sets the batch priority; a bad level is a usage error', async () => {
    const [ok, bad] = await Promise.all([
      runCli(['enqueue', '--url', 'https://img.example.com/a.png', '--url', 'https://img.example.com/b.png', '--model', 'topaz/image-upscale', '--batch', 'P1', '--priority', 'urgent', '--json'], env),
      runCli(['enqueue', '--url', 'https://img.example.com/a.png', '--model', 'topaz/image-upscale', '--priority', 'asap'], env),
    ]);
    expect(ok.stderr).toBe('');
    expect(JSON.parse(ok.stdout)).toMatchObject({ batchId: 'P1', enqueued: 2 });
    expect((await rt.store.getSummary('P1'))!.priority).toBe('urgent');
    expect(await rt.redis.zscore(rt.store.keys.schedUrgent, 'P1')).not.toBeNull();
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--priority.*asap.*urgent, high, normal, low/s);
  });

  it('pause --batch holds one batch and status shows it beside the lanes; resume --batch lets it go', async () => {
    const paused = await runCli(['pause', '--batch', 'P1', '--json'], env);
    expect(paused.code).toBe(0);
    expect(JSON.parse(paused.stdout)).toMatchObject({ batchId: 'P1', alreadyPaused: false, gate: { state: 'paused' }, held: expect.any(Number) });
    const [again, human, json, both, unknown, missing] = await Promise.all([
      runCli(['pause', '--batch', 'P1'], env),
      runCli(['status'], env),
      runCli(['status', '--batch', 'P1', '--json'], env),
      runCli(['pause', '--batch', 'P1', '--lanes', 'submit'], env),
      runCli(['pause', '--batch', 'nope'], env),
      runCli(['resume', '--batch'], env),
    ]);
    expect(again.stdout).toMatch(/Batch P1 was already paused/);
    expect(human.stdout).toMatch(/batch P1 .* PAUSED {2}priority urgent/);
    expect(human.stdout).toMatch(/PAUSED \(since .*\): paused by upscale pause --batch — .*upscale resume --batch P1/);
    expect(human.stdout).toMatch(/lanes: submit running.*\nbatches held: P1 \(paused\)/);
    expect(JSON.parse(json.stdout)).toMatchObject({ priority: 'urgent', gate: { state: 'paused', reason: 'paused by upscale pause --batch' } });
    expect(await rt.queues.submit.isPaused()).toBe(false); // a batch pause is not a lane pause
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--batch and --lanes do not go together/);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no batch named nope/);
    expect(missing.code).toBe(2);

    const resumed = await runCli(['resume', '--batch', 'P1'], env);
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toMatch(/Resumed batch P1 \(was paused: paused by upscale pause --batch\); (its \d+ waiting images? (takes its turn|take turns) again|none of its images was waiting to be submitted)\./);
    expect((await rt.store.getSummary('P1'))!.gate).toBeNull();
    const twice = await runCli(['resume', '--batch', 'P1'], env);
    expect(twice.stdout).toMatch(/Batch P1 was not paused/);
  });

  it('enqueue into a paused batch warns that the new images hold until resume --batch (CLI and library)', async () => {
    const first = await runCli(['enqueue', '--url', 'https://img.example.com/p2a.png', '--model', 'topaz/image-upscale', '--batch', 'P2'], env);
    expect(first.stderr).not.toMatch(/paused/);
    expect((await runCli(['pause', '--batch', 'P2'], env)).code).toBe(0);
    const [human, json] = await Promise.all([
      runCli(['enqueue', '--url', 'https://img.example.com/p2b.png', '--model', 'topaz/image-upscale', '--batch', 'P2'], env),
      runCli(['enqueue', '--url', 'https://img.example.com/p2c.png', '--model', 'topaz/image-upscale', '--batch', 'P2', '--json'], env),
    ]);
    const message = 'batch P2 is paused (paused by upscale pause --batch): its new images hold until `upscale resume --batch P2`';
    expect(human.code).toBe(0);
    expect(human.stderr).toContain(`warning: ${message}`);
    expect(JSON.parse(json.stdout)).toMatchObject({ enqueued: 1, batchWarnings: [message] });
    const lib = await enqueue(rt, [{ input: 'https://img.example.com/p2d.png', model: 'topaz/image-upscale' }], { batchId: 'P2' });
    expect(lib.batchPaused).toBe(message);
    const other = await enqueue(rt, [{ input: 'https://img.example.com/p3.png', model: 'topaz/image-upscale' }], { batchId: 'P3' });
    expect(other.batchPaused).toBeUndefined();
  });

  it('pause --batch counts every image not sent yet, admitted to the queue or not (it said none waited while 2 did); one image reads as one', async () => {
    await enqueue(rt, ['p4a', 'p4b'].map((n) => ({ input: `https://img.example.com/${n}.png`, model: 'topaz/image-upscale' })), { batchId: 'P4' });
    await enqueue(rt, [{ input: 'https://img.example.com/p5.png', model: 'topaz/image-upscale' }], { batchId: 'P5' });
    const [two, one] = await Promise.all([runCli(['pause', '--batch', 'P4'], env), runCli(['pause', '--batch', 'P5'], env)]);
    expect(two.stdout).toContain('Paused batch P4: its 2 waiting images stay unsubmitted;');
    expect(one.stdout).toContain('Paused batch P5: its 1 waiting image stays unsubmitted;');
    const resumed = await runCli(['resume', '--batch', 'P5'], env);
    expect(resumed.stdout).toContain('its 1 waiting image takes its turn again.');
    await runCli(['resume', '--batch', 'P4'], env);
  });

  it('priority --batch ID LEVEL changes the priority; bad input is refused with a reason', async () => {
    const [ok, bad, noBatch, unknown] = await Promise.all([
      runCli(['priority', '--batch', 'P1', 'low', '--json'], env),
      runCli(['priority', '--batch', 'P1', 'top'], env),
      runCli(['priority', 'high'], env),
      runCli(['priority', '--batch', 'nope', 'high'], env),
    ]);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ batchId: 'P1', before: 'urgent', priority: 'low' });
    expect((await rt.store.getSummary('P1'))!.priority).toBe('low');
    expect(await rt.redis.zscore(rt.store.keys.schedUrgent, 'P1')).toBeNull();
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/top.*urgent, high, normal, low/s);
    expect(noBatch.code).toBe(2);
    expect(noBatch.stderr).toMatch(/--batch is missing/);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no batch named nope/);
    // The same level again changes nothing and says so (it printed "low → low ... at the new priority").
    const same = await runCli(['priority', '--batch', 'P1', 'low'], env);
    expect(same.stdout.trim()).toBe('Batch P1 is already at priority low; nothing changed.');
  });
});
