/**
 * A kie.ai-compatible simulator for offline runs, demos and tests (ARCHITECTURE.md, `src/sim`): the same
 * endpoints, envelope, limits and failure codes as KIE_API.md describes, and real upscaling with sharp.
 * It implements the protocol on its own (it never imports src/kie), so it can catch client bugs; production
 * code never imports it.
 *
 * ```ts
 * const sim = await startSimulator({ apiKeys: ['k'], timeScale: 100 });
 * // KIE_BASE_URL = KIE_UPLOAD_BASE_URL = sim.url
 * await sim.stop();
 * ```
 */
import { setMaxListeners } from 'node:events';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { CallbackSender } from './callbacks.js';
import { statsOf, type SimContext } from './context.js';
import { FaultState } from './faults.js';
import { FileStore } from './files.js';
import { LightOutputs } from './light.js';
import { KeyedLimiter } from './limits.js';
import { checkApiKeys, resolveOptions, type SimFaults, type SimOptions } from './options.js';
import { streamRng } from './random.js';
import { buildSimApp } from './server.js';
import { StatsCollector, type SimStats } from './stats.js';
import type { SimTaskRecord } from './task-view.js';
import { TaskStore } from './tasks.js';
import { Upscaler } from './upscale.js';

export { DEFAULT_FAULTS, SIM_MODELS, SIM_RECRAFT, SIM_TOPAZ } from './options.js';
export type { LatencySpec, SimDialect, SimFaults, SimOptions, SimPrices } from './options.js';
export type { SimStats } from './stats.js';
export type { SimTaskRecord, TaskState } from './task-view.js';
export { signCallback } from './callbacks.js';
export { renderSampleImage, NOT_AN_IMAGE, type SampleFormat } from './images.js';

export interface Simulator {
  /** `http://127.0.0.1:PORT` (or `publicUrl`): use it as KIE_BASE_URL and KIE_UPLOAD_BASE_URL both. */
  url: string;
  /** Where the server really listens, `http://<host>:<port>` (127.0.0.1 for a wildcard host), whatever `publicUrl` says. */
  listenUrl: string;
  port: number;
  /** Changes some faults now; throws a RangeError naming a bad field. */
  setFaults(f: Partial<SimFaults>): void;
  setCredits(n: number): void;
  /** Changes the daily cap of createTask (433 past it; null lifts it). */
  setDailyLimit(n: number | null): void;
  /**
   * Replaces the accepted Bearer keys, as revoking a key on kie.ai's dashboard (or creating a new one) would: from
   * the next call on, every API call with a key not in `keys` answers 401 (createTask, recordInfo, the credit
   * endpoint and the uploads alike); tasks already created run on. Throws a RangeError unless `keys` holds at least
   * one non-empty key (the same rule as the `apiKeys` option).
   */
  setApiKeys(keys: string[]): void;
  /** Every API call answers 455 for `durationMs` (real ms, scaled) from now. */
  maintenanceWindow(durationMs: number): void;
  stats(): SimStats;
  /** Every task created so far. */
  tasks(): SimTaskRecord[];
  /** Closes the server, timers and pending callbacks, and deletes the temp files. Idempotent. */
  stop(): Promise<void>;
}

function urlHost(host: string): string {
  if (host === '' || host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

export async function startSimulator(options: SimOptions): Promise<Simulator> {
  const opts = resolveOptions(options);
  const logger = options.logger ?? pino({ level: 'silent' });
  const rng = (name: string) => streamRng(opts.seed, name);
  const stopController = new AbortController();
  // Every slow answer, input fetch and upload in flight listens to it until it ends: more than Node's 10 is normal.
  setMaxListeners(0, stopController.signal);
  const files = await FileStore.create();
  const stats = new StatsCollector();
  const faults = new FaultState(opts.faults, rng('faults'));
  const credits = { balance: opts.credits };
  // The slow drain: other spending on the account, applied every 50 ms of real time (scaled). The rate is read at
  // each step, so `POST /sim/control { creditDrain }` starts, changes or stops it.
  let drainedAt = Date.now();
  const drain = setInterval(() => {
    const now = Date.now();
    if (opts.creditDrain > 0) credits.balance = Math.max(0, credits.balance - (opts.creditDrain * opts.timeScale * (now - drainedAt)) / 1000);
    drainedAt = now;
  }, 50);
  drain.unref();
  let base = opts.publicUrl ?? `http://${urlHost(opts.host)}:${opts.port}`;
  /** Where the server really listens; set once it does (no task is created before). */
  let listenUrl = base;
  const callbacks = new CallbackSender({
    dialect: opts.dialect,
    faults,
    rng: rng('callbacks'),
    stats,
    hmacKey: opts.webhookHmacKey,
    timeScale: opts.timeScale,
    logger,
  });
  const upscaler = new Upscaler(opts.upscaleConcurrency);
  const light = opts.light ? new LightOutputs(upscaler, files) : null;
  const tasks = new TaskStore({
    opts,
    latencyRng: rng('latency'),
    oddRng: rng('odd'),
    failRng: rng('fail'),
    idRng: rng('ids'),
    files,
    upscaler,
    light,
    stats,
    credits,
    callbacks,
    baseUrl: () => base,
    ownBases: () => [base, listenUrl],
    logger,
  });
  const ctx: SimContext = {
    opts,
    logger,
    stats,
    faults,
    createLimiter: new KeyedLimiter(opts.createLimit),
    queryLimiter: new KeyedLimiter(opts.queryLimit),
    credits,
    files,
    tasks,
    light,
    callbacks,
    baseUrl: () => base,
    stopSignal: stopController.signal,
  };
  const app = await buildSimApp(ctx);
  try {
    await app.listen({ host: opts.host, port: opts.port });
  } catch (e) {
    await app.close().catch(() => undefined);
    await files.destroy();
    throw e;
  }
  const port = (app.server.address() as AddressInfo).port;
  listenUrl = `http://${urlHost(opts.host)}:${port}`;
  base = opts.publicUrl ?? listenUrl;
  logger.info(
    { url: base, listenUrl, timeScale: opts.timeScale, createLimit: opts.createLimit, queryLimit: opts.queryLimit },
    'sim: listening',
  );

  let stopping: Promise<void> | undefined;
  return {
    url: base,
    listenUrl,
    port,
    setFaults: (f) => faults.set(f),
    setCredits: (n) => {
      if (!Number.isFinite(n) || n < 0)
        throw new RangeError(`credits must be a number of at least 0 (got ${n})`);
      credits.balance = n;
    },
    setDailyLimit: (n) => {
      if (n !== null && !(Number.isSafeInteger(n) && n >= 0)) throw new RangeError(`dailyLimit must be a whole number of at least 0, or null (got ${n})`);
      opts.dailyLimit = n;
    },
    setApiKeys: (keys) => {
      opts.apiKeys = checkApiKeys(keys);
    },
    maintenanceWindow: (durationMs) => faults.maintenanceFor(durationMs / opts.timeScale),
    stats: () => statsOf(ctx),
    tasks: () => tasks.list(),
    stop: () =>
      (stopping ??= (async () => {
        stopController.abort();
        clearInterval(drain);
        await tasks.stop();
        await callbacks.stop();
        await app.close();
        await files.destroy();
        logger.info('sim: stopped');
      })()),
  };
}
