/**
 * The environment contract, read and validated once (ARCHITECTURE.md, "The contract users and scripts rely on").
 * `loadConfig()` returns a frozen `Config`; any bad value makes it throw one `ConfigError` listing every problem.
 * An empty string means unset. No other module reads `process.env`.
 */
import { createHmac } from 'node:crypto';
import { resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { DEFAULT_OUTPUT_NAME, parseNameTemplate } from '../storage/name-template.js';
import { hashTagOf, parseClusterNodes, type ClusterNode } from './cluster.js';
import { normalisePrefix, parseTrustProxy, type TrustProxy } from './paths.js';
import { parseOutputUrl, type OutputLocation } from './output.js';
import { parseDuration, parseRateLimit, type RateLimit } from './units.js';
import { httpUrlProblem, urlProblem } from '../url-problem.js';

export { parseDuration, parseRateLimit, formatDuration, type RateLimit } from './units.js';
export { hashTagOf, parseClusterNodes, type ClusterNode } from './cluster.js';
export { normalisePrefix, parseTrustProxy, type TrustProxy } from './paths.js';
export { parseOutputUrl, type OutputLocation } from './output.js';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const duration = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((v, ctx) => {
      try {
        return parseDuration(v);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message });
        return z.NEVER;
      }
    });

const rateLimit = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((v, ctx): RateLimit => {
      try {
        return parseRateLimit(v);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message });
        return z.NEVER;
      }
    });

/** A share: a decimal number in (0, 1]. */
const share = (fallback: number) =>
  z
    .string()
    .default(String(fallback))
    .transform((v, ctx) => {
      const t = v.trim();
      const n = Number(t);
      if (!/^(\d+(\.\d*)?|\.\d+)$/.test(t) || !(n > 0 && n <= 1)) {
        ctx.addIssue({ code: 'custom', message: `"${v}" is not a share; expected a number above 0 and at most 1, such as 0.8` });
        return z.NEVER;
      }
      return n;
    });

const url = (protocols: readonly string[], what: string) =>
  z.string().superRefine((v, ctx) => {
    const expected = `expected ${protocols.map((p) => p + '//').join(' or ')}...`;
    const problem = urlProblem(v);
    if (problem !== null) ctx.addIssue({ code: 'custom', message: `is not a ${what} URL: ${problem} (${expected})` });
    else if (!protocols.includes(new URL(v).protocol)) ctx.addIssue({ code: 'custom', message: `is not a ${what} URL (${expected})` });
  });

const int = (fallback: number, min: number, max: number) =>
  z
    .string()
    .default(String(fallback))
    .transform((v, ctx) => {
      const n = Number(v.trim());
      if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
        ctx.addIssue({ code: 'custom', message: `"${v}" is not a whole number from ${min} to ${max}` });
        return z.NEVER;
      }
      return n;
    });

/**
 * Credits per task by model and output size (KIE_API.md, "Credits"; reported, unconfirmed). A topaz output is
 * priced by its longest side: up to 2048 px (2K), up to 4096 px (4K), larger (8K).
 */
export interface PriceTable {
  readonly topaz2K: number;
  readonly topaz4K: number;
  readonly topaz8K: number;
  readonly recraft: number;
}

/** @defaultValue of PRICE_TABLE: topaz 10 / 20 / 40, recraft 0.5 */
export const DEFAULT_PRICES: PriceTable = Object.freeze({ topaz2K: 10, topaz4K: 20, topaz8K: 40, recraft: 0.5 });

const priceTable = z
  .string()
  .optional()
  .transform((v, ctx): PriceTable => {
    if (v === undefined) return DEFAULT_PRICES;
    let raw: unknown;
    try {
      raw = JSON.parse(v);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'is not JSON (e.g. {"topaz4K":20,"recraft":0.5})' });
      return z.NEVER;
    }
    const price = z.number().nonnegative().finite();
    const parsed = z
      .strictObject({ topaz2K: price, topaz4K: price, topaz8K: price, recraft: price })
      .partial()
      .safeParse(raw);
    if (!parsed.success) {
      const why = parsed.error.issues.map((i) => `${i.path.join('.') || 'value'}: ${i.message}`).join('; ');
      ctx.addIssue({ code: 'custom', message: `is not a price table (keys topaz2K, topaz4K, topaz8K, recraft; credits ≥ 0): ${why}` });
      return z.NEVER;
    }
    const overrides = Object.fromEntries(Object.entries(parsed.data).filter(([, n]) => n !== undefined));
    return Object.freeze({ ...DEFAULT_PRICES, ...overrides });
  });

const clusterNodes = z
  .string()
  .optional()
  .transform((v, ctx): readonly ClusterNode[] | undefined => {
    if (v === undefined) return undefined;
    try {
      return Object.freeze(parseClusterNodes(v).map((n) => Object.freeze(n)));
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
      return z.NEVER;
    }
  });

/** `HH:MM` or `HH:MM:SS`, a time of day in UTC, as milliseconds after midnight. */
const timeOfDay = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((v, ctx) => {
      const m = /^(\d{1,2}):(\d{2})(?::(\d{2}))?$/.exec(v.trim());
      const [h, min, sec] = m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : [NaN, NaN, NaN];
      if (!m || h > 23 || min > 59 || sec > 59) {
        ctx.addIssue({ code: 'custom', message: `"${v}" is not a UTC time of day; expected HH:MM or HH:MM:SS such as 00:00 or 08:30` });
        return z.NEVER;
      }
      return ((h * 60 + min) * 60 + sec) * 1000;
    });

const bool = z
  .string()
  .default('false')
  .transform((v, ctx) => {
    const s = v.trim().toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(s)) return true;
    if (['0', 'false', 'no', 'off'].includes(s)) return false;
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a boolean (use true/false, 1/0, yes/no)` });
    return z.NEVER;
  });

/** Every variable, its default, and what it means. Documented again in the README's environment table. */
const schema = z.object({
  /** kie.ai API key (Bearer). Required against the real API; the simulator accepts the same key. */
  KIE_API_KEY: z.string().optional(),
  /** @defaultValue `https://api.kie.ai` */
  KIE_BASE_URL: url(['http:', 'https:'], 'http(s)').default('https://api.kie.ai'),
  /** @defaultValue `https://kieai.redpandaai.co` (file uploads) */
  KIE_UPLOAD_BASE_URL: url(['http:', 'https:'], 'http(s)').default('https://kieai.redpandaai.co'),
  /** @defaultValue `redis://127.0.0.1:6379` */
  REDIS_URL: url(['redis:', 'rediss:'], 'Redis').default('redis://127.0.0.1:6379'),
  /**
   * Redis Cluster seed nodes, `host:port,host:port` (any reachable masters; the rest are discovered). When set, the
   * processes connect to the cluster instead of REDIS_URL's host, taking REDIS_URL's scheme (`rediss:` = TLS),
   * user name and password for every node. Needs a hash-tagged UPSCALE_PREFIX such as `{upscale}`, so each
   * queue's keys (and the records beside them) share one slot. @defaultValue unset (a single Redis at REDIS_URL)
   */
  REDIS_CLUSTER_NODES: clusterNodes,
  /** Redis key prefix of every queue and record. Wrap it in braces (`{upscale}`) for Redis Cluster. @defaultValue `upscale` */
  UPSCALE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_{}.-]+$/, 'may hold only letters, digits and _ { } . -')
    .default('upscale'),
  /** createTask budget of the account. @defaultValue `20/10s` */
  KIE_CREATE_LIMIT: rateLimit('20/10s'),
  /** recordInfo budget of the key. @defaultValue `10/1s` */
  KIE_QUERY_LIMIT: rateLimit('10/1s'),
  /** kie.ai's webhook HMAC key; when set, callbacks must carry a valid X-Webhook-Signature. */
  KIE_WEBHOOK_HMAC_KEY: z.string().optional(),
  /** Where kie.ai can reach `upscale serve`'s callback receiver. No callbacks when unset. */
  PUBLIC_BASE_URL: url(['http:', 'https:'], 'http(s)').optional(),
  /** Secret for the per-job callback token. @defaultValue derived from KIE_API_KEY (or a fixed dev value without one) */
  CALLBACK_SECRET: z.string().optional(),
  /**
   * Download results to this folder; the same as OUTPUT_URL=file:///that/folder. A relative folder is resolved
   * against the working directory at start (the worker logs the absolute location). No download lane when neither is set.
   */
  OUTPUT_DIR: z.string().optional(),
  /**
   * Where results are stored: `file:///absolute/folder` or `s3://bucket/optional/prefix` (S3 or any S3-compatible
   * store; credentials from the standard AWS chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE and the
   * shared files, web identity, instance roles). No download lane when neither it nor OUTPUT_DIR is set.
   */
  OUTPUT_URL: z
    .string()
    .optional()
    .transform((v, ctx): OutputLocation | undefined => {
      if (v === undefined) return undefined;
      try {
        return parseOutputUrl(v);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message });
        return z.NEVER;
      }
    }),
  /**
   * How each result is named under OUTPUT_URL (fields in README "Output names"), checked at enqueue.
   * @defaultValue `{batchId}/{jobId}-{name}.{ext}` (the OUTPUT_DIR layout)
   */
  OUTPUT_NAME: z
    .string()
    .default(DEFAULT_OUTPUT_NAME)
    .transform((v, ctx) => {
      try {
        return parseNameTemplate(v).source;
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message.replace(/^OUTPUT_NAME /, '') });
        return z.NEVER;
      }
    }),
  /** S3 endpoint of an S3-compatible store (MinIO, R2, GCS's XML API...). @defaultValue AWS's endpoint for the region */
  S3_ENDPOINT: url(['http:', 'https:'], 'http(s)')
    .refine((v) => !/^[a-z]+:\/\/[^/]*@/i.test(v), { message: 'must not hold credentials (use the AWS credential chain)' })
    .optional(),
  /** S3 region. @defaultValue the AWS chain's (AWS_REGION, profile); `us-east-1` with S3_ENDPOINT */
  S3_REGION: z
    .string()
    .regex(/^[a-z0-9-]{2,40}$/, 'is not a region name (e.g. eu-central-1)')
    .optional(),
  /** Address buckets as `endpoint/bucket` instead of `bucket.endpoint` (MinIO and most self-hosted stores). @defaultValue `false` */
  S3_FORCE_PATH_STYLE: bool,
  /**
   * The AWS chain reads these itself; they are read here only to name them in errors (a profile with no
   * credentials: `no AWS credentials found for profile "x"`, with the files looked in).
   */
  AWS_PROFILE: z.string().optional(),
  AWS_SHARED_CREDENTIALS_FILE: z.string().optional(),
  AWS_CONFIG_FILE: z.string().optional(),
  /** Downloads running at once per worker process (p-limit). @defaultValue `4` */
  DOWNLOAD_CONCURRENCY: int(4, 1, 256),
  /** Tries of one download (exponential backoff from RETRY_BACKOFF) before it is given up. @defaultValue `5` */
  DOWNLOAD_RETRIES: int(5, 1, 50),
  /** How long an uploaded local file is trusted; an older copy is uploaded again before submission. @defaultValue `20h` */
  UPLOAD_LIFETIME: duration('20h'),
  /**
   * Credits per task for `upscale estimate` and `--max-credits`, as JSON; keys given override the defaults.
   * @defaultValue `{"topaz2K":10,"topaz4K":20,"topaz8K":40,"recraft":0.5}`
   */
  PRICE_TABLE: priceTable,
  /** A task not finished this long after submission is recorded `timed_out`. @defaultValue `15m` */
  POLL_DEADLINE: duration('15m'),
  /** Shortest wait between two status checks of one task. @defaultValue `2s` */
  POLL_MIN_INTERVAL: duration('2s'),
  /** Longest wait between two status checks of one task. @defaultValue `30s` */
  POLL_MAX_INTERVAL: duration('30s'),
  /**
   * How long after createTask kie.ai may still answer `422 recordInfo is null` for the new task before the image is
   * recorded failed (kie.ai answers it for a few seconds after createTask: kie-samples 28, 29; KIE_API.md). A time, not
   * a count of checks: checks come as often as the query budget allows. @defaultValue `60s`
   */
  TASK_VISIBLE_WITHIN: duration('60s'),
  /**
   * Share of KIE_QUERY_LIMIT that polling spends (the rest is headroom for other users of the key); within it the
   * checks go to the tasks most likely to have finished. @defaultValue `0.8`
   */
  POLL_BUDGET_SHARE: share(0.8),
  /** First slow-down after a 429; doubles on repeats. @defaultValue `10s` */
  RATE_LIMIT_BACKOFF: duration('10s'),
  /** First slow-down after a 455 (maintenance); doubles on repeats. @defaultValue `60s` */
  MAINTENANCE_BACKOFF: duration('60s'),
  /** Ceiling of the escalating slow-down. @defaultValue `10m` */
  MAX_BACKOFF: duration('10m'),
  /** Base of the exponential retry delay (with jitter) for 500/501/network errors. @defaultValue `2s` */
  RETRY_BACKOFF: duration('2s'),
  /** How many times a createTask is retried on 500/501/network errors. @defaultValue `5` */
  SUBMIT_RETRIES: int(5, 0, 100),
  /**
   * The submit circuit breaker: this many createTask failures in a row, for different images, with the same kie code
   * and message pause submission (the images go back to waiting). 0 turns it off. @defaultValue `5`
   */
  SUBMIT_BREAKER: int(5, 0, 10_000),
  /**
   * How long a lane paused by kie.ai (401, 402) or by the breaker waits before it probes with one call or one image;
   * repeated after every failed probe. @defaultValue `5m`
   */
  PROBE_COOLDOWN: duration('5m'),
  /**
   * When kie.ai's daily key limits reset, as a UTC time of day (`HH:MM[:SS]`); a lane paused by a 433 (daily limit)
   * probes at the next such time. @defaultValue `00:00` (the next UTC day)
   */
  KIE_DAILY_RESET: timeOfDay('00:00'),
  /** How many times a task that failed server-side (failCode 5xx) is submitted again. @defaultValue `1` */
  RESUBMIT_FAILED: int(1, 0, 10),
  /** Timeout of one HTTP call to kie.ai. @defaultValue `30s` */
  KIE_REQUEST_TIMEOUT: duration('30s'),
  /** How long result records and batch summaries are kept in Redis. @defaultValue `30d` */
  RESULT_RETENTION: duration('30d'),
  /** How long `upscale worker` waits for running jobs after SIGINT/SIGTERM. @defaultValue `30s` */
  SHUTDOWN_TIMEOUT: duration('30s'),
  /**
   * BullMQ lock of a running job; a job whose worker died is taken over after about twice this
   * (lock expiry, then the stalled-job check). @defaultValue `30s`
   */
  JOB_LOCK_DURATION: duration('30s'),
  /** Allow input URLs that resolve to private, loopback or link-local addresses (demo and tests). @defaultValue `false` */
  ALLOW_PRIVATE_URLS: bool,
  /**
   * Fault injection for tests and chaos runs; never set it in production. The worker process kills itself
   * (SIGKILL) the first time a submit job reaches that point: `after-create` (createTask answered, taskId not yet
   * checkpointed) or `after-checkpoint` (taskId checkpointed, poll job not yet added).
   */
  UPSCALE_CRASH_AT: z.enum(['after-create', 'after-checkpoint']).optional(),
  /**
   * Where notifications go: one or more http(s) URLs, comma- or space-separated. Each event is POSTed to each URL
   * (Standard Webhooks headers), at least once, retried with backoff for NOTIFY_RETRY_FOR. @defaultValue unset (events
   * are still recorded and shown in `upscale status`, but not sent)
   */
  NOTIFY_URL: z
    .string()
    .optional()
    .transform((v, ctx): readonly string[] => {
      if (v === undefined) return [];
      const urls = v.split(/[\s,]+/).filter(Boolean);
      for (const u of urls) {
        const problem = httpUrlProblem(u);
        if (problem !== null) ctx.addIssue({ code: 'custom', message: `"${u}" is not an http(s) URL: ${problem} (give one or more, comma-separated)` });
      }
      return Object.freeze([...new Set(urls)]);
    }),
  /**
   * Standard Webhooks signing secret: `whsec_` followed by base64 (as Standard Webhooks libraries generate), or any
   * other text, used as raw bytes. Notifications are unsigned without it (a warning at start).
   */
  NOTIFY_SECRET: z
    .string()
    .optional()
    .refine((v) => v === undefined || !v.startsWith('whsec_') || /^whsec_[A-Za-z0-9+/]+={0,2}$/.test(v), {
      message: 'starts with whsec_ but the rest is not base64',
    }),
  /** `json` (Standard Webhooks event objects) or `slack` (`{ text }`, for chat webhooks). @defaultValue `json` */
  NOTIFY_FORMAT: z.enum(['json', 'slack']).default('json'),
  /** How long an undelivered notification is retried (exponential backoff from RETRY_BACKOFF up to MAX_BACKOFF). @defaultValue `24h` */
  NOTIFY_RETRY_FOR: duration('24h'),
  /** A batch with work left but no image finished for this long is reported `batch.stalled`. @defaultValue `30m` */
  STALL_AFTER: duration('30m'),
  /**
   * How often the account's credit balance is read (kie.ai's credit endpoint), once for all worker processes
   * together. @defaultValue `1m`
   */
  CREDITS_CHECK_INTERVAL: duration('1m'),
  /**
   * The path a reverse proxy serves the HTTP app under, with the prefix stripped before the request reaches it
   * (e.g. `/ops`): every link, redirect and Bull Board's `<base href>` carry it. @defaultValue none (served at `/`)
   */
  PUBLIC_PATH: z
    .string()
    .transform((v, ctx) => {
      const p = normalisePrefix(v);
      if (p === null) {
        ctx.addIssue({ code: 'custom', message: 'must be a path like /ops or /tools/upscale (letters, digits, . _ ~ - between slashes)' });
        return z.NEVER;
      }
      return p;
    })
    .optional(),
  /**
   * Which peers are trusted proxies: `true` (any), `false`, or a comma list of addresses / CIDR ranges. Their
   * `X-Forwarded-Prefix` overrides PUBLIC_PATH per request, and fastify reads their `X-Forwarded-For`/`-Proto`.
   * @defaultValue `false`
   */
  TRUST_PROXY: z
    .string()
    .transform((v, ctx): TrustProxy => {
      try {
        return parseTrustProxy(v);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message });
        return z.NEVER;
      }
    })
    .optional(),
  /** Basic-auth user of the dashboard (with DASHBOARD_PASSWORD). */
  DASHBOARD_USER: z.string().optional(),
  /** Basic-auth password of the dashboard (with DASHBOARD_USER). */
  DASHBOARD_PASSWORD: z.string().optional(),
  /** @defaultValue `info` */
  LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
});

type Parsed = z.output<typeof schema>;

/** The validated, frozen configuration. Durations are milliseconds; limits are `{ max, durationMs }`. */
export interface Config {
  readonly apiKey: string | undefined;
  readonly kieBaseUrl: string;
  readonly kieUploadBaseUrl: string;
  readonly redisUrl: string;
  /** REDIS_CLUSTER_NODES, parsed; undefined for a single Redis. */
  readonly redisClusterNodes: readonly ClusterNode[] | undefined;
  readonly prefix: string;
  readonly createLimit: RateLimit;
  readonly queryLimit: RateLimit;
  readonly webhookHmacKey: string | undefined;
  readonly publicBaseUrl: string | undefined;
  readonly callbackSecret: string;
  /** Where results are stored (OUTPUT_URL, or OUTPUT_DIR as a file location); undefined: no download lane. */
  readonly output: OutputLocation | undefined;
  /** The output folder when results are stored on this machine's disk (file location), else undefined. */
  readonly outputDir: string | undefined;
  /** OUTPUT_NAME, checked (parse it with `parseNameTemplate`). */
  readonly outputName: string;
  readonly s3: {
    readonly endpoint: string | undefined;
    readonly region: string | undefined;
    readonly forcePathStyle: boolean;
    /** AWS_PROFILE and the shared files the AWS chain reads (named in errors only; the SDK reads them itself). */
    readonly profile?: { readonly name: string; readonly credentialsFile: string; readonly configFile: string } | undefined;
  };
  readonly downloadConcurrency: number;
  readonly downloadRetries: number;
  readonly uploadLifetimeMs: number;
  readonly priceTable: PriceTable;
  readonly pollDeadlineMs: number;
  readonly pollMinIntervalMs: number;
  /** TASK_VISIBLE_WITHIN, ms. */
  readonly taskVisibleWithinMs: number;
  readonly pollMaxIntervalMs: number;
  /** POLL_BUDGET_SHARE: the share (0, 1] of the query budget polling spends. */
  readonly pollBudgetShare: number;
  readonly rateLimitBackoffMs: number;
  readonly maintenanceBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly retryBackoffMs: number;
  readonly submitRetries: number;
  /** SUBMIT_BREAKER: identical failures of different images in a row that pause submission; 0 = off. */
  readonly submitBreaker: number;
  /** PROBE_COOLDOWN, ms. */
  readonly probeCooldownMs: number;
  /** KIE_DAILY_RESET as ms after UTC midnight. */
  readonly dailyResetMs: number;
  readonly resubmitFailed: number;
  readonly requestTimeoutMs: number;
  readonly resultRetentionMs: number;
  readonly shutdownTimeoutMs: number;
  readonly jobLockMs: number;
  readonly allowPrivateUrls: boolean;
  readonly crashAt: 'after-create' | 'after-checkpoint' | undefined;
  readonly notifyUrls: readonly string[];
  readonly notifySecret: string | undefined;
  readonly notifyFormat: 'json' | 'slack';
  readonly notifyRetryForMs: number;
  readonly stallAfterMs: number;
  readonly creditsCheckIntervalMs: number;
  /** PUBLIC_PATH, normalised: '' or e.g. '/ops'. */
  readonly publicPath: string;
  readonly trustProxy: TrustProxy;
  readonly dashboardUser: string | undefined;
  readonly dashboardPassword: string | undefined;
  readonly logLevel: (typeof LOG_LEVELS)[number];
}

/** Thrown by `loadConfig` with every problem at once; `problems` holds one `KEY: reason` line each. */
/** Variables whose whole value is a secret: never echoed in a configuration error. */
const SECRET_KEY = /KEY|SECRET|PASSWORD|TOKEN|CREDENTIAL/i;

/**
 * A variable's value as a configuration error may show it: a secret variable's value not at all (`(hidden)`), and
 * the user-info part of any URL in it (`s3://key:secret@bucket`, `redis://:pass@host`) replaced by `***`.
 */
export function shownValue(key: string, value: string): string {
  if (SECRET_KEY.test(key) && !/URL$|ENDPOINT$/.test(key)) return '(hidden)';
  return redactUserinfo(value);
}

/** `scheme://user:pass@host/...` → `scheme://***@host/...` (every URL in `text`); text without one is unchanged. */
export function redactUserinfo(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/?#\s]*@/gi, '$1***@');
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly string[]) {
    super(`Invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n  ${problems.join('\n  ')}`);
  }
}

/** The variables this module reads; anything else in the environment is ignored. */
export const CONFIG_KEYS = Object.keys(schema.shape) as (keyof Parsed)[];

/**
 * Reads and validates the environment once. `overrides` (used by tests and the demo) win over `env`.
 * Empty strings count as unset.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Record<string, string> = {}): Config {
  const raw: Record<string, string> = {};
  for (const key of CONFIG_KEYS) {
    const v = overrides[key] ?? env[key];
    if (v !== undefined && v.trim() !== '') raw[key] = v;
  }
  const result = schema.safeParse(raw);
  const problems: string[] = [];
  if (!result.success) {
    for (const issue of result.error.issues) {
      const key = String(issue.path[0] ?? '?');
      const given = raw[key] === undefined ? undefined : shownValue(key, raw[key]);
      const message = issue.message.startsWith('"') || given === undefined ? issue.message : `"${given}" ${issue.message}`;
      problems.push(`${key}: ${message}`);
    }
  }
  const p = result.success ? result.data : undefined;
  if (p) {
    if (p.POLL_MIN_INTERVAL > p.POLL_MAX_INTERVAL) {
      problems.push(`POLL_MIN_INTERVAL: must not be longer than POLL_MAX_INTERVAL`);
    }
    if (p.REDIS_CLUSTER_NODES !== undefined && hashTagOf(p.UPSCALE_PREFIX) === null) {
      problems.push(
        `UPSCALE_PREFIX: "${p.UPSCALE_PREFIX}" has no hash tag; with REDIS_CLUSTER_NODES wrap it in braces (e.g. {${p.UPSCALE_PREFIX.replace(/[{}]/g, '') || 'upscale'}}) so each queue's keys share one slot`,
      );
    }
    if (p.OUTPUT_DIR !== undefined && p.OUTPUT_URL !== undefined) {
      const same = p.OUTPUT_URL.kind === 'file' && p.OUTPUT_URL.dir === resolvePath(p.OUTPUT_DIR);
      if (!same) problems.push(`OUTPUT_DIR / OUTPUT_URL: set one of them (OUTPUT_DIR is OUTPUT_URL=file:// + an absolute folder)`);
    }
    if ((p.DASHBOARD_USER === undefined) !== (p.DASHBOARD_PASSWORD === undefined)) {
      problems.push('DASHBOARD_USER / DASHBOARD_PASSWORD: set both or neither');
    }
  }
  if (problems.length > 0 || !p) throw new ConfigError(problems);
  const output: OutputLocation | undefined =
    p.OUTPUT_URL ?? (p.OUTPUT_DIR !== undefined ? parseOutputUrl(pathToFileURL(resolvePath(p.OUTPUT_DIR)).href) : undefined);
  return Object.freeze({
    apiKey: p.KIE_API_KEY,
    kieBaseUrl: p.KIE_BASE_URL.replace(/\/+$/, ''),
    kieUploadBaseUrl: p.KIE_UPLOAD_BASE_URL.replace(/\/+$/, ''),
    redisUrl: p.REDIS_URL,
    redisClusterNodes: p.REDIS_CLUSTER_NODES,
    prefix: p.UPSCALE_PREFIX,
    createLimit: Object.freeze(p.KIE_CREATE_LIMIT),
    queryLimit: Object.freeze(p.KIE_QUERY_LIMIT),
    webhookHmacKey: p.KIE_WEBHOOK_HMAC_KEY,
    publicBaseUrl: p.PUBLIC_BASE_URL?.replace(/\/+$/, ''),
    callbackSecret:
      p.CALLBACK_SECRET ??
      createHmac('sha256', p.KIE_API_KEY ?? 'kie-upscale-queue without a key').update('callback-token/v1').digest('hex'),
    output: output && Object.freeze(output),
    outputDir: output?.kind === 'file' ? output.dir : undefined,
    outputName: p.OUTPUT_NAME,
    s3: Object.freeze({
      endpoint: p.S3_ENDPOINT?.replace(/\/+$/, ''),
      region: p.S3_REGION ?? (p.S3_ENDPOINT !== undefined ? 'us-east-1' : undefined),
      profile:
        p.AWS_PROFILE === undefined
          ? undefined
          : { name: p.AWS_PROFILE.trim(), credentialsFile: p.AWS_SHARED_CREDENTIALS_FILE ?? '~/.aws/credentials', configFile: p.AWS_CONFIG_FILE ?? '~/.aws/config' },
      forcePathStyle: p.S3_FORCE_PATH_STYLE,
    }),
    downloadConcurrency: p.DOWNLOAD_CONCURRENCY,
    downloadRetries: p.DOWNLOAD_RETRIES,
    uploadLifetimeMs: p.UPLOAD_LIFETIME,
    priceTable: p.PRICE_TABLE,
    pollDeadlineMs: p.POLL_DEADLINE,
    pollMinIntervalMs: p.POLL_MIN_INTERVAL,
    taskVisibleWithinMs: p.TASK_VISIBLE_WITHIN,
    pollMaxIntervalMs: p.POLL_MAX_INTERVAL,
    pollBudgetShare: p.POLL_BUDGET_SHARE,
    rateLimitBackoffMs: p.RATE_LIMIT_BACKOFF,
    maintenanceBackoffMs: p.MAINTENANCE_BACKOFF,
    maxBackoffMs: p.MAX_BACKOFF,
    retryBackoffMs: p.RETRY_BACKOFF,
    submitRetries: p.SUBMIT_RETRIES,
    submitBreaker: p.SUBMIT_BREAKER,
    probeCooldownMs: p.PROBE_COOLDOWN,
    dailyResetMs: p.KIE_DAILY_RESET,
    resubmitFailed: p.RESUBMIT_FAILED,
    requestTimeoutMs: p.KIE_REQUEST_TIMEOUT,
    resultRetentionMs: p.RESULT_RETENTION,
    shutdownTimeoutMs: p.SHUTDOWN_TIMEOUT,
    jobLockMs: p.JOB_LOCK_DURATION,
    allowPrivateUrls: p.ALLOW_PRIVATE_URLS,
    crashAt: p.UPSCALE_CRASH_AT,
    notifyUrls: p.NOTIFY_URL,
    notifySecret: p.NOTIFY_SECRET,
    notifyFormat: p.NOTIFY_FORMAT,
    notifyRetryForMs: p.NOTIFY_RETRY_FOR,
    stallAfterMs: p.STALL_AFTER,
    creditsCheckIntervalMs: p.CREDITS_CHECK_INTERVAL,
    publicPath: p.PUBLIC_PATH ?? '',
    trustProxy: p.TRUST_PROXY ?? false,
    dashboardUser: p.DASHBOARD_USER,
    dashboardPassword: p.DASHBOARD_PASSWORD,
    logLevel: p.LOG_LEVEL,
  });
}
