/**
 * Shared parts of the server tests: a Runtime on a fresh prefix, the app built on it with its log lines captured,
 * signed callback requests, and jobs placed in the lanes' queues in a chosen state.
 */
import { Writable } from 'node:stream';
import { Worker, type Job } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../../src/config/index.js';
import { signWebhook } from '../../src/kie/callback.js';
import { createLogger } from '../../src/log.js';
import { callbackToken } from '../../src/queue/callback-token.js';
import { createRedis } from '../../src/queue/connection.js';
import { pollJobId, submitJobId } from '../../src/queue/identity.js';
import type { PollJobData, SubmitJobData } from '../../src/queue/job-data.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { buildApp, type ServerOptions } from '../../src/server/app.js';
import { deletePrefix, freshPrefix, testRedisUrl } from '../helpers/redis.js';

export const SECRET = 'callback-secret-for-tests';
export const HMAC = 'whk-for-tests';
export const TOPAZ = 'topaz/image-upscale' as const;

/** Collects every log line written to it. */
export class LogSink extends Writable {
  lines: string[] = [];
  override _write(chunk: Buffer | string, _enc: BufferEncoding, done: () => void): void {
    this.lines.push(...String(chunk).split('\n').filter(Boolean));
    done();
  }
  text(): string {
    return this.lines.join('\n');
  }
}

export interface Bench {
  rt: Runtime;
  app: FastifyInstance;
  logs: LogSink;
  prefix: string;
  close(): Promise<void>;
}

/** A Runtime on a fresh prefix and the app on it (not listening). `env` adds configuration. */
export async function startBench(
  env: Record<string, string> = {},
  options: ServerOptions = {},
): Promise<Bench> {
  const prefix = freshPrefix('srv');
  const config = loadConfig(
    {},
    {
      REDIS_URL: testRedisUrl(),
      UPSCALE_PREFIX: prefix,
      CALLBACK_SECRET: SECRET,
      LOG_LEVEL: 'silent',
      ...env,
    },
  );
  const logs = new LogSink();
  const rt = createRuntime(config, { log: createLogger({ level: 'silent' }) });
  const app = buildApp(rt, { logger: createLogger({ level: 'debug', destination: logs }), ...options });
  await app.ready();
  return {
    rt,
    app,
    logs,
    prefix,
    async close() {
      await app.close();
      await rt.close();
      await deletePrefix(testRedisUrl(), prefix);
    },
  };
}

/** A 24-hex image id. */
export function imageId(n: number): string {
  return n.toString(16).padStart(24, '0');
}

export function pollData(jobId: string, taskId: string, generation = 0): PollJobData {
  const now = Date.now();
  return {
    jobId,
    batchId: 'b1',
    model: TOPAZ,
    taskId,
    generation,
    submittedAt: now - 5000,
    deadlineAt: now + 600_000,
    polls: 1,
    errors: 0,
  };
}

export function submitData(jobId: string, extra: Partial<SubmitJobData> = {}, generation = 0): SubmitJobData {
  return {
    jobId,
    batchId: 'b1',
    input: 'https://img.test/a.png',
    model: TOPAZ,
    factor: '2',
    generation,
    attempts: 1,
    ...extra,
  };
}

/** A poll job parked (delayed) for a minute, as the poll lane leaves it between checks. */
export async function parkedPollJob(
  rt: Runtime,
  jobId: string,
  taskId: string,
  generation = 0,
): Promise<Job<PollJobData>> {
  const job = await rt.queues.poll.add('poll', pollData(jobId, taskId, generation), {
    jobId: pollJobId(jobId, generation),
    delay: 60_000,
  });
  return job as Job<PollJobData>;
}

/** Takes the next job of a lane as a worker would (active, locked); `release` closes the worker. */
export async function takeJob<T>(
  rt: Runtime,
  lane: 'submit' | 'poll',
): Promise<{ job: Job<T>; token: string; release(): Promise<void> }> {
  const connection = createRedis(rt.config.redisUrl, 'worker');
  const worker = new Worker(lane, null, {
    connection,
    prefix: rt.config.prefix,
    autorun: false,
    lockDuration: 30_000,
  });
  const token = `test-${Math.random().toString(16).slice(2)}`;
  const job = (await worker.getNextJob(token, { block: false })) as Job<T> | undefined;
  if (!job) throw new Error(`no ${lane} job to take`);
  return {
    job,
    token,
    async release() {
      await worker.close(true);
      connection.disconnect();
    },
  };
}

export interface CallbackRequest {
  id: string;
  taskId?: string;
  /** Body text as sent; default a kie.ai success body for `taskId`. */
  body?: string;
  /** Token; default the right one for `id`, `null` for none. */
  token?: string | null;
  /** Sign with this key (default: none); `timestamp` in Unix seconds (default now). */
  hmacKey?: string;
  timestamp?: number;
  signature?: string;
  contentType?: string;
}

export function successBody(taskId: string, idField: 'taskId' | 'task_id' = 'taskId'): string {
  return JSON.stringify({
    code: 200,
    msg: 'Image upscaled successfully.',
    data: {
      [idField]: taskId,
      model: TOPAZ,
      state: 'success',
      resultJson: '{"resultUrls":["https://r.test/x.png"]}',
      creditsConsumed: 20,
    },
  });
}

export function postCallback(app: FastifyInstance, r: CallbackRequest) {
  const token = r.token === undefined ? callbackToken(SECRET, r.id) : r.token;
  const headers: Record<string, string> = { 'content-type': r.contentType ?? 'application/json' };
  if (r.hmacKey !== undefined) {
    const ts = r.timestamp ?? Math.floor(Date.now() / 1000);
    headers['x-webhook-timestamp'] = String(ts);
    headers['x-webhook-signature'] = r.signature ?? signWebhook(r.taskId ?? '', ts, r.hmacKey);
  }
  const query = token === null ? '' : `?t=${encodeURIComponent(token)}`;
  return app.inject({
    method: 'POST',
    url: `/callbacks/kie/${r.id}${query}`,
    headers,
    payload: r.body ?? successBody(r.taskId ?? ''),
  });
}

/** Reads one series of /metrics (0 when absent). */
export async function metricValue(app: FastifyInstance, series: string): Promise<number> {
  const res = await app.inject({ method: 'GET', url: '/metrics' });
  const line = res.body.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

export { pollJobId, submitJobId };
