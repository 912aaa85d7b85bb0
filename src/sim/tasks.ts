/**
 * Task life: waiting → queuing → generating → success | fail, with a latency drawn per model (lognormal,
 * already scaled). A task that succeeds is really upscaled by sharp and its output served at
 * `/results/<taskId>/0.<ext>` (in light mode, the one shared output of its kind: `light.ts`). Credits are reserved
 * at creation and refunded when the task fails.
 */
import { readFile, writeFile } from 'node:fs/promises';
import type { Logger } from '../log.js';
import type { CallbackSender } from './callbacks.js';
import type { ImageFacts } from './fetch-input.js';
import type { FileStore } from './files.js';
import type { LightOutputs } from './light.js';
import type { ResolvedOptions } from './options.js';
import { keyedRng, lognormal, type Rng } from './random.js';
import type { StatsCollector } from './stats.js';
import { toRecord, type SimTask, type SimTaskRecord } from './task-view.js';
import type { Upscaler } from './upscale.js';
import type { CreateRequest } from './validate.js';

/** The failMsg of a failed task, per failCode. */
const FAIL_MESSAGES: Readonly<Record<string, string>> = {
  '400': 'The input image could not be processed',
  '422': 'The input image is not supported',
  '500': 'Internal server error, please try again later',
  '501': 'Generation failed',
  '505': 'This feature is disabled',
};

/** Where a task is in its schedule, as shares of its latency. */
const QUEUING_AT = 0.05;
const GENERATING_AT = 0.15;

export interface TaskDeps {
  opts: ResolvedOptions;
  latencyRng: Rng;
  /** Draws which tasks report odd states (its own stream, so oddStates never changes latencies or outcomes). */
  oddRng: Rng;
  failRng: Rng;
  idRng: Rng;
  files: FileStore;
  upscaler: Upscaler;
  /** Light mode's shared outputs; null when every task upscales its own input. */
  light: LightOutputs | null;
  stats: StatsCollector;
  credits: { balance: number };
  callbacks: CallbackSender;
  baseUrl: () => string;
  /** The simulator's own bases (public URL, listen URL): an input URL under one is keyed by its path and query. */
  ownBases: () => readonly string[];
  logger: Logger;
}

/**
 * The input part of a task's key under `latencyByInput`: the URL as sent, or, for a URL on the simulator itself
 * (under one of `ownBases`, e.g. `http://127.0.0.1:PORT`), its path and query alone, so the same sample image or
 * uploaded file keys the same in simulators listening on different ports.
 */
export function inputKey(url: string, ownBases: readonly string[]): string {
  for (const raw of ownBases) {
    const base = raw.replace(/\/+$/, '');
    if (base !== '' && url.startsWith(`${base}/`)) return url.slice(base.length);
  }
  return url;
}

export class TaskStore {
  private tasks = new Map<string, SimTask>();
  private timers = new Set<NodeJS.Timeout>();
  private finishing = new Set<Promise<void>>();
  /** Light mode: the input bytes of tasks not ended yet (kept in memory instead of a file per task). */
  private lightInputs = new Map<string, Buffer>();
  private stopped = false;
  /** latencyByInput: tasks created so far per (model, factor, input key), so the n-th of them draws with n. */
  private drawsByInput = new Map<string, number>();

  constructor(private readonly deps: TaskDeps) {}

  /** Creates a task whose credits were already taken; keeps its input bytes on disk until it ends. */
  async create(req: CreateRequest, facts: ImageFacts, price: number, input: Buffer): Promise<SimTask> {
    const { opts, idRng, files } = this.deps;
    let taskId = idRng.hex(16);
    while (this.tasks.has(taskId)) taskId = idRng.hex(16);
    const { latency, failCode } = this.draw(req);
    const now = Date.now();
    const odd = this.deps.oddRng.chance(opts.oddStates);
    const task: SimTask = {
      odd,
      taskId,
      model: req.model,
      input: req.imageUrl,
      factor: req.factor,
      param: req.param,
      callBackUrl: req.callBackUrl,
      final: null,
      failCode: null,
      failMsg: null,
      resultUrls: [],
      inputWidth: facts.width,
      inputHeight: facts.height,
      outputWidth: null,
      outputHeight: null,
      createdAt: now,
      latencyMs: latency,
      completedAt: null,
      price,
      creditsConsumed: 0,
      callbacksSent: 0,
      queuingAt: now + latency * QUEUING_AT,
      generatingAt: now + latency * GENERATING_AT,
      dueAt: now + latency,
    };
    if (!this.deps.light) await writeFile(files.inputPath(taskId), input);
    if (this.stopped) throw new Error('the simulator stopped');
    if (this.deps.light) this.lightInputs.set(taskId, input);
    this.tasks.set(taskId, task);
    const timer = setTimeout(
      () => {
        this.timers.delete(timer);
        const p = this.finish(task, failCode).finally(() => this.finishing.delete(p));
        this.finishing.add(p);
      },
      Math.max(0, task.dueAt - Date.now()),
    );
    timer.unref();
    this.timers.add(timer);
    return task;
  }

  /**
   * A new task's latency (real ms, already scaled) and outcome (a failCode, or null for success), drawn now, at
   * creation, so a seed decides them whatever the completion order. By default from the latency and fail streams
   * in creation order; with `latencyByInput`, from a PRNG of the task's own key (`SimOptions.latencyByInput`).
   */
  private draw(req: CreateRequest): { latency: number; failCode: string | null } {
    const { opts } = this.deps;
    const spec = opts.latency[req.model] ?? {
      medianMs: 10_000 / opts.timeScale,
      p95Ms: 30_000 / opts.timeScale,
    };
    let latencyRng = this.deps.latencyRng;
    let failRng = this.deps.failRng;
    if (opts.latencyByInput) {
      const key = [req.model, req.factor ?? '', inputKey(req.imageUrl, this.deps.ownBases())];
      const id = key.join('\u0000');
      const n = this.drawsByInput.get(id) ?? 0;
      this.drawsByInput.set(id, n + 1);
      key.push(String(n));
      latencyRng = keyedRng(opts.seed, 'latency', key);
      failRng = keyedRng(opts.seed, 'fail', key);
    }
    const latency = lognormal(latencyRng, spec.medianMs, spec.p95Ms);
    const failCode = failRng.chance(opts.failRate) ? failRng.weighted(opts.failCodes) : null;
    return { latency, failCode };
  }

  get(taskId: string): SimTask | undefined {
    return this.tasks.get(taskId);
  }

  list(): SimTaskRecord[] {
    const now = Date.now();
    return [...this.tasks.values()].map((t) => toRecord(t, now));
  }

  counts(): { succeeded: number; failed: number; inFlight: number } {
    let succeeded = 0;
    let failed = 0;
    for (const t of this.tasks.values()) {
      if (t.final === 'success') succeeded++;
      else if (t.final === 'fail') failed++;
    }
    return { succeeded, failed, inFlight: this.tasks.size - succeeded - failed };
  }

  /** Makes the task's output and serves it; resolves with its path and size (null once the simulator stopped). */
  private async produce(task: SimTask, inputFile: string): Promise<{ path: string; width: number; height: number } | null> {
    const { opts, files, upscaler, light } = this.deps;
    if (light) {
      const input = this.lightInputs.get(task.taskId);
      if (!input) throw new Error(`light mode: the input of task ${task.taskId} is gone`);
      const shared = await light.get(input, task.model, task.factor);
      if (this.stopped) return null;
      const path = `/results/${task.taskId}/0.${shared.ext}`;
      files.alias(path, shared.file, opts.resultTtlMs);
      return { path, width: shared.width, height: shared.height };
    }
    const out = await upscaler.run(await readFile(inputFile), task.model, task.factor);
    if (this.stopped) return null;
    const path = `/results/${task.taskId}/0.${out.ext}`;
    await files.put(path, out.data, out.mimeType, opts.resultTtlMs);
    return { path, width: out.width, height: out.height };
  }

  private async finish(task: SimTask, failCode: string | null): Promise<void> {
    const { files, logger } = this.deps;
    const inputFile = files.inputPath(task.taskId);
    try {
      if (this.stopped) return;
      if (failCode !== null) {
        this.fail(task, failCode, FAIL_MESSAGES[failCode] ?? 'Generation failed');
        return;
      }
      try {
        const out = await this.produce(task, inputFile);
        if (this.stopped || !out) return;
        const { path } = out;
        task.resultUrls = [`${this.deps.baseUrl()}${path}`];
        task.outputWidth = out.width;
        task.outputHeight = out.height;
        task.creditsConsumed = task.price;
        task.final = 'success';
        task.completedAt = Date.now();
        logger.debug(
          { taskId: task.taskId, model: task.model, width: out.width, height: out.height },
          'sim: task succeeded',
        );
      } catch (e) {
        if (this.stopped) return;
        logger.warn({ taskId: task.taskId, err: e }, 'sim: upscale failed; the task fails with 500');
        this.fail(task, '500', FAIL_MESSAGES['500'] as string);
        return;
      }
      this.deps.callbacks.completed(task);
    } finally {
      if (this.deps.light) this.lightInputs.delete(task.taskId);
      else await files.removeQuietly(inputFile);
    }
  }

  private fail(task: SimTask, code: string, msg: string): void {
    task.final = 'fail';
    task.failCode = code;
    task.failMsg = msg;
    task.creditsConsumed = 0;
    task.completedAt = Date.now();
    this.deps.credits.balance += task.price;
    this.deps.logger.debug({ taskId: task.taskId, failCode: code }, 'sim: task failed');
    this.deps.callbacks.completed(task);
  }

  /** Cancels the schedules and waits for the tasks that are ending right now. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.deps.upscaler.stop();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await Promise.allSettled([...this.finishing]);
  }
}
