/**
 * The pipeline's environment for running against a simulator at a compressed time scale: kie.ai's limits,
 * poll intervals, back-offs and deadlines all divided by the same factor, so a test or benchmark at ×20 behaves
 * like a real run twenty times faster. The request timeout stays real time (the production default). Used by tests, benchmarks and the demo (never by production code paths).
 */

function ms(value: number): string {
  return `${Math.max(1, Math.round(value))}ms`;
}

export interface ScaledEnvOptions {
  simUrl: string;
  apiKey: string;
  timeScale: number;
  redisUrl: string;
  prefix: string;
  /** kie.ai's documented budgets before scaling. @defaultValue 20 per 10 s, 10 per 1 s */
  createLimit?: { max: number; durationMs: number };
  queryLimit?: { max: number; durationMs: number };
}

/** Environment variables (the same ones a user sets) for workers, commands and the server. */
export function scaledPipelineEnv(o: ScaledEnvOptions): Record<string, string> {
  const s = o.timeScale;
  const create = o.createLimit ?? { max: 20, durationMs: 10_000 };
  const query = o.queryLimit ?? { max: 10, durationMs: 1000 };
  return {
    KIE_API_KEY: o.apiKey,
    KIE_BASE_URL: o.simUrl,
    KIE_UPLOAD_BASE_URL: o.simUrl,
    REDIS_URL: o.redisUrl,
    UPSCALE_PREFIX: o.prefix,
    KIE_CREATE_LIMIT: `${create.max}/${ms(create.durationMs / s)}`,
    KIE_QUERY_LIMIT: `${query.max}/${ms(query.durationMs / s)}`,
    POLL_MIN_INTERVAL: ms(2000 / s),
    POLL_MAX_INTERVAL: ms(30_000 / s),
    POLL_DEADLINE: ms((15 * 60_000) / s),
    TASK_VISIBLE_WITHIN: ms(60_000 / s),
    RATE_LIMIT_BACKOFF: ms(10_000 / s),
    MAINTENANCE_BACKOFF: ms(60_000 / s),
    MAX_BACKOFF: ms(600_000 / s),
    RETRY_BACKOFF: ms(2000 / s),
    // kie.ai time too: a paused lane's probe, the credit balance read and a stalled batch's notice.
    PROBE_COOLDOWN: ms(300_000 / s),
    CREDITS_CHECK_INTERVAL: ms(60_000 / s),
    STALL_AFTER: ms(1_800_000 / s),
    // Not scaled: how long the simulator takes to answer is real time on a machine that may be loaded, not kie.ai
    // time. A scaled 5 s timeout cut off createTask answers the simulator was still writing under load; without
    // callbacks such an attempt is ambiguous and was sent again (a task paid twice in the flaky pipeline-e2e run).
    KIE_REQUEST_TIMEOUT: '30s',
    JOB_LOCK_DURATION: ms(Math.max(2000, 30_000 / s)),
    SHUTDOWN_TIMEOUT: ms(Math.max(3000, 30_000 / s)),
    ALLOW_PRIVATE_URLS: 'true',
  };
}
