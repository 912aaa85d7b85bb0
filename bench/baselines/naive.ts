/**
 * The naive kie.ai client people write today, as public kie.ai clients do: axios straight at the API, a local
 * sliding-window limiter of 20 createTask per 10 s in *this process*, p-limit around each image, and a fixed 3 s
 * poll loop per task. Nothing is shared between processes, so two of them together send twice the account's
 * budget and find out through 429s.
 *
 * `tsx bench/baselines/naive.ts <job.json>`; job.json: `{ simUrl, apiKey, timeScale, out, images: [{ url, model, factor? }] }`,
 * optionally `settings` overriding the defaults below (scenario 4 holds 10,000 tasks in flight with them).
 * Appends one JSON line per image to `out`: `{ input, taskId, state, completedAt, polls, creates, create429, query429 }`.
 * All waits are kie.ai time divided by `timeScale`, like the simulator's.
 */
import { appendFileSync, readFileSync } from 'node:fs';
import axios from 'axios';
import pLimit from 'p-limit';

/** The settings of a typical client, in kie.ai time. */
const DEFAULTS = {
  createLimit: { max: 20, windowMs: 10_000 },
  /** p-limit: images handled at once per process (kie.ai: "typically allows 100+ concurrent running tasks"; two processes). */
  concurrency: 50,
  pollIntervalMs: 3000,
  /** Wait after a 429 before trying again. */
  retryAfter429Ms: 2000,
  /** Give up on a task after this (kie.ai's advice: 10-15 minutes). */
  deadlineMs: 15 * 60_000,
};

interface Job {
  simUrl: string;
  apiKey: string;
  timeScale: number;
  out: string;
  images: { url: string; model: string; factor?: string }[];
  settings?: Partial<typeof DEFAULTS>;
}

const job = JSON.parse(readFileSync(process.argv[2] as string, 'utf8')) as Job;
const { createLimit: CREATE_LIMIT, concurrency: CONCURRENCY, pollIntervalMs: POLL_INTERVAL_MS, retryAfter429Ms: RETRY_AFTER_429_MS, deadlineMs: DEADLINE_MS } = {
  ...DEFAULTS,
  ...job.settings,
};
const scale = job.timeScale;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms / scale));

/** A local sliding window: at most `max` calls in any `windowMs`, in this process only. */
class SlidingWindowLimiter {
  private times: number[] = [];
  private chain: Promise<void> = Promise.resolve();
  constructor(
    private readonly max: number,
    private readonly windowMs: number,
  ) {}

  take(): Promise<void> {
    const next = this.chain.then(async () => {
      for (;;) {
        const now = performance.now();
        while (this.times.length > 0 && (this.times[0] as number) <= now - this.windowMs) this.times.shift();
        if (this.times.length < this.max) {
          this.times.push(now);
          return;
        }
        await new Promise((r) => setTimeout(r, (this.times[0] as number) + this.windowMs - now + 1));
      }
    });
    this.chain = next;
    return next;
  }
}

interface Envelope<T> {
  code: number;
  msg?: string;
  data: T;
}

const http = axios.create({
  baseURL: job.simUrl,
  timeout: 30_000,
  headers: { Authorization: `Bearer ${job.apiKey}`, 'User-Agent': 'naive-kie-client/1.0', 'Content-Type': 'application/json' },
  validateStatus: () => true,
});
const limiter = new SlidingWindowLimiter(CREATE_LIMIT.max, CREATE_LIMIT.windowMs / scale);
const limit = pLimit(CONCURRENCY);

async function processImage(image: Job['images'][number]): Promise<void> {
  const input = image.model === 'recraft/crisp-upscale' ? { image: image.url } : { image_url: image.url, upscale_factor: image.factor ?? '2' };
  let creates = 0;
  let create429 = 0;
  let query429 = 0;
  let taskId: string | null = null;
  for (let attempt = 0; attempt < 50 && taskId === null; attempt++) {
    await limiter.take();
    creates++;
    const r = await http.post<Envelope<{ taskId: string }>>('/api/v1/jobs/createTask', { model: image.model, input });
    if (r.data.code === 200) taskId = r.data.data.taskId;
    else if (r.data.code === 429 || r.status === 429) {
      create429++;
      await sleep(RETRY_AFTER_429_MS);
    } else {
      await sleep(RETRY_AFTER_429_MS);
    }
  }
  let polls = 0;
  let state = 'create_failed';
  const started = Date.now();
  if (taskId !== null) {
    state = 'timed_out';
    while ((Date.now() - started) * scale < DEADLINE_MS) {
      await sleep(POLL_INTERVAL_MS);
      polls++;
      const r = await http.get<Envelope<{ state: string } | null>>('/api/v1/jobs/recordInfo', { params: { taskId } });
      if (r.data.code === 429 || r.status === 429) {
        query429++;
        continue;
      }
      const s = r.data.data?.state;
      if (s === 'success' || s === 'fail') {
        state = s;
        break;
      }
    }
  }
  appendFileSync(job.out, JSON.stringify({ input: image.url, taskId, state, completedAt: Date.now(), polls, creates, create429, query429 }) + '\n');
}

await Promise.all(job.images.map((image) => limit(() => processImage(image))));
