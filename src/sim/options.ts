/**
 * The simulator's options, their defaults, and their resolution into scaled, validated values.
 * Every duration here is real kie.ai time; `timeScale` divides all of them (latency, windows, expiries, delays).
 */
import type { Logger } from '../log.js';
import type { RateLimit } from '../config/units.js';
import { monotonicMs } from './limits.js';

export const SIM_TOPAZ = 'topaz/image-upscale';
export const SIM_RECRAFT = 'recraft/crisp-upscale';
/** The models the simulator knows, spelled as kie.ai spells them (kept apart from src/kie on purpose). */
export const SIM_MODELS = [SIM_TOPAZ, SIM_RECRAFT] as const;

/** Latency of a model's tasks, from createTask to the terminal state, as a lognormal distribution. */
export interface LatencySpec {
  /** Median, in real milliseconds (before time scaling). */
  medianMs: number;
  /** 95th percentile, in real milliseconds; at least the median. */
  p95Ms: number;
}

/** Credits per task. Failed tasks consume nothing (the reserved price is refunded). */
export interface SimPrices {
  /** topaz with an output of at most 2048 px on its longest side. @defaultValue 10 */
  topaz2K: number;
  /** topaz with an output of at most 4096 px. @defaultValue 20 */
  topaz4K: number;
  /** topaz with a larger output (up to the 20,000 px cap). @defaultValue 40 */
  topaz8K: number;
  /** recraft/crisp-upscale, any size. @defaultValue 0.5 */
  recraft: number;
}

/** Injected faults; all adjustable at run time (`setFaults`, `POST /sim/control`). Rates are shares in [0, 1]. */
export interface SimFaults {
  /** Every API call (uploads included) answers 455 while true. @defaultValue false */
  maintenance: boolean;
  /** Share of createTask/recordInfo answered 500 before anything happens (no task, not counted in a window). @defaultValue 0 */
  serverErrorRate: number;
  /** Share of createTask answered 501 before anything happens (no task created). @defaultValue 0 */
  generationErrorRate: number;
  /** Share of API answers delayed by `slowMs` before the call is processed. @defaultValue 0 */
  slowRate: number;
  /** Delay of a slow answer, real ms (scaled). @defaultValue 30000 */
  slowMs: number;
  /**
   * Share of API answers whose JSON body is cut in half. The call *was* processed: a malformed createTask
   * answer may hide a task that exists (an ambiguous submit). @defaultValue 0
   */
  malformedRate: number;
  /** Share of API calls answered by a Cloudflare-like HTML 502 page before anything happens. @defaultValue 0 */
  htmlErrorRate: number;
  /** Share of task completions whose callback is never sent. @defaultValue 0 */
  callbackDropRate: number;
  /** Share of callbacks sent twice. @defaultValue 0 */
  callbackDuplicateRate: number;
  /** Delay before a callback is sent, real ms (scaled). @defaultValue 0 */
  callbackDelayMs: number;
  /**
   * Share of result downloads (`/results/...`, `/dl/...`) answered over HTTP/1.0 without Content-Length and
   * closed after half the bytes: a truncated output that looks complete to a client reading to the close. @defaultValue 0
   */
  truncatedResultRate: number;
  /** Share of result downloads sent gzip-encoded (`Content-Encoding: gzip`) though nobody asked. @defaultValue 0 */
  gzipResultRate: number;
}

export const DEFAULT_FAULTS: Readonly<SimFaults> = Object.freeze({
  maintenance: false,
  serverErrorRate: 0,
  generationErrorRate: 0,
  slowRate: 0,
  slowMs: 30_000,
  malformedRate: 0,
  htmlErrorRate: 0,
  callbackDropRate: 0,
  callbackDuplicateRate: 0,
  callbackDelayMs: 0,
  truncatedResultRate: 0,
  gzipResultRate: 0,
});

/**
 * How the simulator answers. `live` (the default) follows recorded live answers (../shared/kie-samples): errors as
 * HTTP 200 envelopes, `costTime` in whole seconds, `422 recordInfo is null` for about 2 s (scaled) after createTask,
 * request validation errors as code 500, callbacks from a Hutool client. `docs` follows the documentation: `costTime`
 * in ms in recordInfo, validation errors as 422, a task visible at once, a plain callback User-Agent.
 */
export type SimDialect = 'live' | 'docs';

export interface SimOptions {
  /** @defaultValue `live` */
  dialect?: SimDialect;
  /**
   * createTask answers `433` ("... exceeded the daily limit", HTTP 200) once this many tasks were created in the
   * current UTC day; null = no daily cap. Adjustable at run time (`setDailyLimit`, `POST /sim/control`). @defaultValue null
   */
  dailyLimit?: number | null;
  /**
   * `Retry-After` on every 429: a number of real seconds (sent scaled, whole seconds, at least 0), or a string sent
   * verbatim (to test invalid values). @defaultValue unset (no header)
   */
  retryAfter?: number | string;
  /**
   * Share of tasks that report states this client does not know while running (`""`, `"PROCESSING"`, no state,
   * `data: null`) and upper-case synonyms when they end (`"SUCCEEDED"`, `"FAILED"`). Their outcome is unchanged.
   * @defaultValue 0
   */
  oddStates?: number;
  /** Interface to listen on. @defaultValue `127.0.0.1` */
  host?: string;
  /** Port; 0 picks a free one. @defaultValue 0 */
  port?: number;
  /** Base of every URL the simulator hands out (results, uploads). @defaultValue `http://<host>:<port>` (127.0.0.1 for a wildcard host) */
  publicUrl?: string;
  /** Bearer keys accepted; anything else answers 401. At least one. Replaceable at run time (`setApiKeys`). */
  apiKeys: string[];
  /** Speed-up: 10 makes every latency, window, expiry and delay ten times shorter. @defaultValue 1 */
  timeScale?: number;
  /** createTask budget per key, sliding window (real time). @defaultValue `{ max: 20, durationMs: 10_000 }` */
  createLimit?: RateLimit;
  /** recordInfo budget per key, sliding window (real time). @defaultValue `{ max: 10, durationMs: 1_000 }` */
  queryLimit?: RateLimit;
  /** A 429 as HTTP 429 with the envelope (`http`) or HTTP 200 with `code: 429` (`envelope`). @defaultValue `envelope` */
  rateLimitStyle?: 'http' | 'envelope';
  /** Other error envelopes (401, 402, 422, 455, 500, 501) with HTTP 200 (`envelope`) or the code as HTTP status (`http`). @defaultValue `envelope` */
  errorStyle?: 'http' | 'envelope';
  /** Task latency per model. @defaultValue topaz 20 s median / 60 s p95, recraft 8 s / 20 s */
  latency?: Partial<Record<string, LatencySpec>>;
  /** Share of tasks that end in state `fail`. @defaultValue 0 */
  failRate?: number;
  /** Relative weights of the failCode of a failed task. @defaultValue `{ "500": 1 }` */
  failCodes?: Record<string, number>;
  /** Starting credit balance. createTask answers 402 when the balance is below the task's price. @defaultValue 100000 */
  credits?: number;
  /**
   * A slow drain: credits the account loses per second of simulated time to other spending (another tool on the
   * same key), so a balance read goes stale between reads. @defaultValue 0
   */
  creditDrain?: number;
  /** Prices per task. @defaultValue see `SimPrices` */
  prices?: Partial<SimPrices>;
  /** topaz factors accepted (some sources say "8" is refused). @defaultValue `["1", "2", "4", "8"]` */
  topazFactors?: string[];
  /** When set, callbacks carry X-Webhook-Timestamp and X-Webhook-Signature. @defaultValue unset (unsigned) */
  webhookHmacKey?: string;
  /** Initial faults. @defaultValue none (see `DEFAULT_FAULTS`) */
  faults?: Partial<SimFaults>;
  /** Result URLs answer 404 this long after completion (real ms, scaled). @defaultValue 24 h */
  resultTtlMs?: number;
  /** Uploaded files answer 404 this long after upload (real ms, scaled). @defaultValue 3 days */
  uploadTtlMs?: number;
  /** Timeout of fetching an input image or an uploaded URL (not scaled: it is real network time). @defaultValue 30000 */
  fetchTimeoutMs?: number;
  /** How many sharp upscales run at once. @defaultValue 2 */
  upscaleConcurrency?: number;
  /**
   * Light mode, for runs of many thousands of images on a small machine: a successful task's output is upscaled by
   * sharp once per distinct input (its bytes), model and factor, and that one file is served for every later task
   * of the same kind: real bytes of the right dimensions, reported and actual, without a resize per task. Inputs
   * are still fetched and inspected at createTask (kie.ai's checks), but not written to disk per task.
   * @defaultValue false (every task upscales its own input)
   */
  light?: boolean;
  /** Seed of every random draw (latency, failures, faults, task ids). @defaultValue 1 */
  seed?: number;
  /**
   * Per-input draws, for comparing runs that create the same tasks in different orders (bench scenario 1): a task's
   * latency (hence its waiting → queuing → generating schedule, fixed shares of it) and its outcome (`failRate`,
   * `failCodes`) are drawn from a PRNG seeded by a hash of (seed, model, topaz factor, input image URL, n), where n
   * counts the earlier tasks of this simulator with the same model, factor and URL (0 for the first, so a retry or a
   * duplicate draws anew, the same way in every run). An input URL on the simulator itself (its listen address or
   * `publicUrl`) is keyed by its path and query alone, so `/sim/images/...` and uploaded files key the same in
   * simulators on different ports. The same image then takes the same time in any run and in any creation order.
   * Task ids, `oddStates` and faults keep their creation-order streams. Off (the default), latencies and outcomes
   * come from one stream each in creation order, as before. @defaultValue false
   */
  latencyByInput?: boolean;
  /**
   * The clock of the rate-limit windows, in milliseconds (monotonic). Tests freeze and step it to make bursts
   * deterministic on a loaded machine; everything else runs on the real clock. @defaultValue `performance.now`
   */
  windowClock?: () => number;
  /** Where the simulator logs (debug: every call and task). @defaultValue silent */
  logger?: Logger;
}

/** Options after defaults and time scaling: every `...Ms` here is already divided by the time scale. */
export interface ResolvedOptions {
  dialect: SimDialect;
  dailyLimit: number | null;
  retryAfter: number | string | undefined;
  oddStates: number;
  /** How long a new task answers `422 recordInfo is null` (scaled ms; 0 in the docs dialect). */
  visibilityDelayMs: number;
  host: string;
  port: number;
  publicUrl: string | undefined;
  apiKeys: ReadonlySet<string>;
  timeScale: number;
  createLimit: RateLimit;
  queryLimit: RateLimit;
  rateLimitStyle: 'http' | 'envelope';
  errorStyle: 'http' | 'envelope';
  latency: Record<string, LatencySpec>;
  failRate: number;
  failCodes: Record<string, number>;
  credits: number;
  creditDrain: number;
  prices: SimPrices;
  topazFactors: readonly string[];
  webhookHmacKey: string | undefined;
  faults: SimFaults;
  resultTtlMs: number;
  uploadTtlMs: number;
  fetchTimeoutMs: number;
  upscaleConcurrency: number;
  light: boolean;
  seed: number;
  latencyByInput: boolean;
  windowClock: () => number;
}

const DAY = 86_400_000;

function rate(name: string, v: number): number {
  if (!Number.isFinite(v) || v < 0 || v > 1)
    throw new RangeError(`${name} must be a share from 0 to 1 (got ${v})`);
  return v;
}

function positive(name: string, v: number): number {
  if (!Number.isFinite(v) || v <= 0) throw new RangeError(`${name} must be a positive number (got ${v})`);
  return v;
}

function nonNegative(name: string, v: number): number {
  if (!Number.isFinite(v) || v < 0) throw new RangeError(`${name} must be zero or more (got ${v})`);
  return v;
}

/** Checks a partial set of faults (from code or from `POST /sim/control`); throws a RangeError naming the field. */
export function checkFaults(f: Partial<SimFaults>): Partial<SimFaults> {
  const out: Partial<SimFaults> = {};
  for (const [key, value] of Object.entries(f) as [keyof SimFaults, unknown][]) {
    if (!Object.hasOwn(DEFAULT_FAULTS, key)) {
      throw new RangeError(`unknown fault "${key}" (faults: ${Object.keys(DEFAULT_FAULTS).join(', ')})`);
    }
    if (key === 'maintenance') {
      if (typeof value !== 'boolean') throw new RangeError('maintenance must be true or false');
      out.maintenance = value;
    } else if (typeof value !== 'number') {
      throw new RangeError(`${key} must be a number`);
    } else if (key.endsWith('Ms')) {
      out[key] = nonNegative(key, value);
    } else {
      out[key] = rate(key, value);
    }
  }
  return out;
}

function scaleLimit(name: string, l: RateLimit, scale: number): RateLimit {
  if (!Number.isSafeInteger(l.max) || l.max < 1)
    throw new RangeError(`${name}.max must be a whole number of at least 1`);
  return { max: l.max, durationMs: positive(`${name}.durationMs`, l.durationMs) / scale };
}

/** The accepted Bearer keys as a set; throws a RangeError unless there is at least one and none is blank. */
export function checkApiKeys(keys: readonly string[]): Set<string> {
  if (!Array.isArray(keys) || keys.length === 0 || keys.some((k) => typeof k !== 'string' || k.trim() === '')) {
    throw new RangeError('apiKeys must hold at least one non-empty key');
  }
  return new Set<string>(keys);
}

export function resolveOptions(o: SimOptions): ResolvedOptions {
  const apiKeys = checkApiKeys(o.apiKeys);
  const timeScale = positive('timeScale', o.timeScale ?? 1);
  const latency: Record<string, LatencySpec> = {
    [SIM_TOPAZ]: { medianMs: 20_000, p95Ms: 60_000 },
    [SIM_RECRAFT]: { medianMs: 8_000, p95Ms: 20_000 },
  };
  for (const [model, spec] of Object.entries(o.latency ?? {})) {
    if (!spec) continue;
    positive(`latency[${model}].medianMs`, spec.medianMs);
    if (!(spec.p95Ms >= spec.medianMs))
      throw new RangeError(`latency[${model}].p95Ms must be at least the median`);
    latency[model] = { ...spec };
  }
  for (const spec of Object.values(latency)) {
    spec.medianMs /= timeScale;
    spec.p95Ms /= timeScale;
  }
  const faults = { ...DEFAULT_FAULTS, ...checkFaults(o.faults ?? {}) };
  const failCodes = { ...(o.failCodes ?? { '500': 1 }) };
  if (!Object.values(failCodes).some((w) => w > 0))
    throw new RangeError('failCodes needs at least one positive weight');
  const dialect = o.dialect ?? 'live';
  if (dialect !== 'live' && dialect !== 'docs') throw new RangeError(`dialect must be live or docs (got ${String(dialect)})`);
  if (o.dailyLimit !== undefined && o.dailyLimit !== null && !(Number.isSafeInteger(o.dailyLimit) && o.dailyLimit >= 0))
    throw new RangeError(`dailyLimit must be a whole number of at least 0, or null (got ${o.dailyLimit})`);
  if (typeof o.retryAfter === 'number') nonNegative('retryAfter', o.retryAfter);
  return {
    dialect,
    dailyLimit: o.dailyLimit ?? null,
    retryAfter: typeof o.retryAfter === 'number' ? o.retryAfter / timeScale : o.retryAfter,
    oddStates: rate('oddStates', o.oddStates ?? 0),
    visibilityDelayMs: dialect === 'live' ? 2000 / timeScale : 0,
    host: o.host ?? '127.0.0.1',
    port: o.port ?? 0,
    publicUrl: o.publicUrl?.replace(/\/+$/, ''),
    apiKeys,
    timeScale,
    createLimit: scaleLimit('createLimit', o.createLimit ?? { max: 20, durationMs: 10_000 }, timeScale),
    queryLimit: scaleLimit('queryLimit', o.queryLimit ?? { max: 10, durationMs: 1_000 }, timeScale),
    rateLimitStyle: o.rateLimitStyle ?? 'envelope',
    errorStyle: o.errorStyle ?? 'envelope',
    latency,
    failRate: rate('failRate', o.failRate ?? 0),
    failCodes,
    credits: nonNegative('credits', o.credits ?? 100_000),
    creditDrain: nonNegative('creditDrain', o.creditDrain ?? 0),
    prices: { topaz2K: 10, topaz4K: 20, topaz8K: 40, recraft: 0.5, ...o.prices },
    topazFactors: o.topazFactors ?? ['1', '2', '4', '8'],
    webhookHmacKey: o.webhookHmacKey === '' ? undefined : o.webhookHmacKey,
    faults,
    resultTtlMs: positive('resultTtlMs', o.resultTtlMs ?? DAY) / timeScale,
    uploadTtlMs: positive('uploadTtlMs', o.uploadTtlMs ?? 3 * DAY) / timeScale,
    fetchTimeoutMs: positive('fetchTimeoutMs', o.fetchTimeoutMs ?? 30_000),
    upscaleConcurrency: Math.max(1, Math.floor(o.upscaleConcurrency ?? 2)),
    light: o.light ?? false,
    seed: o.seed ?? 1,
    latencyByInput: o.latencyByInput ?? false,
    windowClock: o.windowClock ?? monotonicMs,
  };
}
