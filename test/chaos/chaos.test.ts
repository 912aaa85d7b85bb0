/**
 * Chaos: 1,000 images through three `upscale worker` processes and `upscale serve` (signed callbacks), against a
 * Redis of the test's own (AOF, fsync always) and the simulator at ×20, while the test SIGKILLs a random worker
 * five times (and restarts it), restarts Redis once, and the simulator answers 10% 500s, 429 bursts (its create
 * limit is below the configured one), a 455 window, slow answers, and drops 20% / duplicates 10% of the callbacks.
 *
 * Afterwards: every image is terminal (lost = 0); no input was paid twice unless its record admits an ambiguous
 * submit; the JSONL export agrees with the simulator's own record of every task; no process died except by the
 * test's hand. The figures are printed and written to test-results/last-run.json (and test/chaos/last-run.json, quoted by the README, with UPDATE_DOCS=1).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { enqueue } from '../../src/producer/index.js';
import { exportBatch } from '../../src/results/export.js';
import type { ResultRecord } from '../../src/results/record.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { scaledPipelineEnv } from '../../src/sim/scaled-config.js';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { waitFor } from '../helpers/redis.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { startFleet, type Fleet } from '../helpers/fleet.js';
import { checkPayments, compareWithTask, inputsCreatedTwice, tallyRecords } from '../helpers/run-checks.js';
import { writeArtifact } from '../helpers/artifacts.js';

const IMAGES = 1000;
const SCALE = 20;
const WORKERS = 3;
const KILLS = 5;
const HMAC_KEY = `whk-chaos-${randomBytes(8).toString('hex')}`;
const BATCH = 'chaos';

/** When (share of images finished) each disturbance happens. */
const PLAN: { at: number; what: 'kill' | 'redis' | 'maintenance' }[] = [
  { at: 0.06, what: 'kill' },
  { at: 0.18, what: 'kill' },
  { at: 0.3, what: 'maintenance' },
  { at: 0.36, what: 'kill' },
  { at: 0.46, what: 'redis' },
  { at: 0.56, what: 'kill' },
  { at: 0.7, what: 'kill' },
];

/** Sink for the export. */
class Collect extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void) {
    this.text += chunk.toString();
    done();
  }
}

describe('chaos: 1,000 images, kills, a Redis restart and a fault storm', () => {
  let redis: RedisServer | undefined;
  let sim: Simulator | undefined;
  let rt: Runtime | undefined;
  let fleet: Fleet | undefined;

  afterAll(async () => {
    for (const fp of fleet?.procs ?? []) fp.proc.child.kill('SIGKILL');
    await rt?.close();
    await sim?.stop();
    await redis?.destroy();
  });

  it('loses nothing, pays nothing twice without an ambiguous submit, and exports what the simulator did', async () => {
    const t0 = Date.now();
    redis = await startRedisServer({ aof: true });
    const apiKey = `sk-chaos-${randomBytes(8).toString('hex')}`;
    sim = await startSimulator({
      apiKeys: [apiKey],
      timeScale: SCALE,
      seed: 2026,
      createLimit: { max: 16, durationMs: 10_000 }, // below the configured 20/10s: 429 bursts
      webhookHmacKey: HMAC_KEY,
      failRate: 0.03,
      failCodes: { '422': 1, '500': 1 },
      latency: { 'topaz/image-upscale': { medianMs: 20_000, p95Ms: 50_000 }, 'recraft/crisp-upscale': { medianMs: 8_000, p95Ms: 20_000 } },
      faults: { serverErrorRate: 0.1, slowRate: 0.05, slowMs: 30_000, callbackDropRate: 0.2, callbackDuplicateRate: 0.1 },
    });
    const env = {
      ...scaledPipelineEnv({ simUrl: sim.url, apiKey, timeScale: SCALE, redisUrl: redis.url, prefix: 'chaos' }),
      KIE_WEBHOOK_HMAC_KEY: HMAC_KEY,
      // A 5xx task failure is recorded, not resubmitted: every second createTask of an input is then a double payment.
      RESUBMIT_FAILED: '0',
      // The deadline is not under test here; on a loaded machine the scaled 45 s could expire behind the faults.
      POLL_DEADLINE: '5m',
    };
    rt = createRuntime(loadConfig({}, env), { log: pino({ level: 'silent' }) });
    fleet = await startFleet(env, WORKERS, ['--no-dashboard', '--no-metrics']);

    const items = Array.from({ length: IMAGES }, (_, i) => ({
      input: `${sim!.url}/sim/images/chaos${i}-${32 + (i % 9)}x${24 + (i % 7)}.${(['png', 'jpg', 'webp'] as const)[i % 3]}`,
      model: i % 5 === 0 ? 'recraft/crisp-upscale' : 'topaz/image-upscale',
      ...(i % 5 === 0 ? {} : { factor: i % 2 === 0 ? '2' : '1' }),
    }));
    expect(await enqueue(rt, items, { batchId: BATCH })).toMatchObject({ enqueued: IMAGES, rejected: [] });

    // The disturbances, as the batch progresses.
    const finished = async () => {
      const s = await rt!.store.getSummary(BATCH);
      return s ? s.total - s.counts.waiting - s.counts.submitting - s.counts.polling : 0;
    };
    const log: string[] = [];
    let kills = 0;
    let redisRestarts = 0;
    for (const step of PLAN) {
      await waitFor(async () => (await finished()) >= step.at * IMAGES, { timeoutMs: 200_000, intervalMs: 100, what: `${step.at * 100}% finished` });
      const at = `${((Date.now() - t0) / 1000).toFixed(1)}s`;
      if (step.what === 'kill') {
        const slot = Math.floor(Math.random() * WORKERS);
        await fleet.killAndRestart(slot);
        kills++;
        log.push(`${at} SIGKILL worker ${slot}, restarted`);
      } else if (step.what === 'redis') {
        await redis.restart('shutdown');
        redisRestarts++;
        log.push(`${at} Redis shut down (AOF fsynced) and started again on port ${redis.port}`);
      } else {
        sim.maintenanceWindow(80_000); // 4 s at ×20
        log.push(`${at} 455 window of 80 s (kie time)`);
      }
    }
    await waitFor(async () => (await finished()) >= IMAGES, { timeoutMs: 200_000, intervalMs: 250, what: 'every image to finish' });
    const wallS = Math.round((Date.now() - t0) / 1000);

    // Every image terminal; nothing lost. Double payment: every extra createTask of an input must be covered by an
    // ambiguous submit on its record.
    const stats = sim.stats();
    const tally = await tallyRecords(rt.store.records(BATCH), inputsCreatedTwice(stats.perInput));
    const summary = (await rt.store.getSummary(BATCH))!;
    const lost = IMAGES - tally.terminal;
    const { duplicates, duplicatesWithoutAmbiguity, unexplained } = checkPayments(stats.perInput, tally.ambiguousByInput);

    // The export agrees with the simulator's record of each task.
    const out = new Collect();
    expect(await exportBatch(rt.store, BATCH, { format: 'jsonl', out })).toBe(IMAGES);
    const exported = out.text.trim().split('\n').map((l) => JSON.parse(l) as ResultRecord);
    const tasks = new Map(sim.tasks().map((t) => [t.taskId, t]));
    const mismatches = exported.flatMap((r) => compareWithTask(r, tasks.get(r.taskId ?? '')));

    // No process died except by the test's hand; the survivors drain cleanly.
    const unexpected = fleet.unexpectedExits().map((fp) => `${fp.role}${fp.slot} ${JSON.stringify(fp.exit)}`);
    const killedOk = fleet.procs.filter((fp) => fp.endedByTest === 'SIGKILL').every((fp) => fp.exit?.signal === 'SIGKILL');
    const unclean = (await fleet.stopAll()).map((fp) => `${fp.role}${fp.slot} ${JSON.stringify(fp.exit)}`);
    const output = fleet.allOutput();

    const line = `chaos: images=${IMAGES} kills=${kills} redisRestarts=${redisRestarts} ambiguous=${summary.ambiguousSubmits} duplicatesWithoutAmbiguity=${duplicatesWithoutAmbiguity} lost=${lost} wall=${wallS}s`;
    const figures = {
      line,
      images: IMAGES,
      kills,
      redisRestarts,
      ambiguous: summary.ambiguousSubmits,
      duplicates,
      duplicatesWithoutAmbiguity,
      lost,
      wallSeconds: wallS,
      timeScale: SCALE,
      workers: WORKERS,
      states: summary.counts,
      exportMismatches: mismatches.length,
      simulator: {
        createAccepted: stats.createAccepted,
        createRejected429: stats.createRejected429,
        rejected455: stats.rejected455,
        errors500: stats.errors500,
        slowed: stats.slowed,
        queries: stats.queries,
        callbacksSent: stats.callbacksSent,
        callbacksDropped: stats.callbacksDropped,
        callbacksDuplicated: stats.callbacksDuplicated,
      },
      events: log,
      date: new Date().toISOString(),
    };
    console.log(`${line}\n${log.map((l) => `  ${l}`).join('\n')}`);
    const failed = lost > 0 || duplicatesWithoutAmbiguity > 0 || mismatches.length > 0 || unexpected.length > 0 || unclean.length > 0;
    if (failed) {
      const dir = await mkdtemp(join(tmpdir(), 'chaos-'));
      await fleet.dump(dir);
      console.log(`chaos: process logs in ${dir}`);
    } else {
      await writeArtifact('test/chaos/last-run.json', JSON.stringify(figures, null, 2) + '\n');
    }

    expect(kills).toBe(KILLS);
    expect(redisRestarts).toBe(1);
    expect(lost).toBe(0);
    expect(summary.total).toBe(IMAGES);
    expect(unexplained).toEqual([]);
    expect(mismatches).toEqual([]);
    expect(unexpected).toEqual([]);
    expect(killedOk).toBe(true);
    expect(unclean).toEqual([]);
    expect(redis.proc?.exitCode ?? null, 'redis-server died on its own').toBeNull();
    // The faults really happened.
    expect(stats.createRejected429).toBeGreaterThan(0);
    expect(stats.rejected455).toBeGreaterThan(0);
    expect(stats.errors500).toBeGreaterThan(0);
    expect(stats.callbacksDropped).toBeGreaterThan(0);
    expect(stats.callbacksDuplicated).toBeGreaterThan(0);
    // Nothing unexpected in any process' log: no crash, no secret.
    expect(output).not.toMatch(/Unhandled|uncaughtException|ReferenceError|"level":60/);
    expect(output).not.toContain(apiKey);
    expect(output).not.toContain(HMAC_KEY);
  }, 330_000);
});
