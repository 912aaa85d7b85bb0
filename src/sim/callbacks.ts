/**
 * Callback delivery (KIE_API.md, "Callbacks"): one POST of the task's end to its callBackUrl, signed with
 * the webhook HMAC key when one is set, dropped / duplicated / delayed as the faults say. A failed delivery is
 * counted and never retried: polling stays the fallback.
 */
import { createHmac } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { Logger } from '../log.js';
import type { FaultState } from './faults.js';
import type { Rng } from './random.js';
import type { StatsCollector } from './stats.js';
import { callbackBody, type SimTask } from './task-view.js';

/** kie.ai documents a 15 s delivery timeout; it is real network time, so it is not scaled. */
const DELIVERY_TIMEOUT_MS = 15_000;
/** Gap between a callback and its duplicate, real ms (scaled). */
const DUPLICATE_GAP_MS = 1_000;

/** base64(HMAC-SHA256(`${taskId}.${timestamp}`, key)), as kie.ai signs callbacks. */
export function signCallback(taskId: string, timestampS: number, key: string): string {
  return createHmac('sha256', key).update(`${taskId}.${timestampS}`).digest('base64');
}

/** The User-Agent of kie's callback client (kie-samples 40: Java's Hutool behind a browser string). */
export const HUTOOL_USER_AGENT =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/75.0.3770.142 Safari/537.36 Hutool';

export interface CallbackDeps {
  dialect: 'live' | 'docs';
  faults: FaultState;
  rng: Rng;
  stats: StatsCollector;
  hmacKey: string | undefined;
  timeScale: number;
  logger: Logger;
}

export class CallbackSender {
  private timers = new Set<NodeJS.Timeout>();
  private inflight = new Set<Promise<void>>();
  private readonly abort = new AbortController();

  constructor(private readonly deps: CallbackDeps) {
    // Each delivery in flight listens to it (AbortSignal.any) until it ends: more than Node's 10 at once is normal.
    setMaxListeners(0, this.abort.signal);
  }

  /** Called once when `task` ends. */
  completed(task: SimTask): void {
    if (!task.callBackUrl || this.abort.signal.aborted) return;
    const { faults, rng, stats, timeScale } = this.deps;
    if (rng.chance(faults.faults.callbackDropRate)) {
      stats.counters.callbacksDropped++;
      this.deps.logger.debug({ taskId: task.taskId }, 'sim: callback dropped');
      return;
    }
    const delay = faults.faults.callbackDelayMs / timeScale;
    this.schedule(task, delay);
    if (rng.chance(faults.faults.callbackDuplicateRate)) {
      stats.counters.callbacksDuplicated++;
      this.schedule(task, delay + DUPLICATE_GAP_MS / timeScale);
    }
  }

  private schedule(task: SimTask, delayMs: number): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      const p = this.send(task).finally(() => this.inflight.delete(p));
      this.inflight.add(p);
    }, delayMs);
    timer.unref();
    this.timers.add(timer);
  }

  private async send(task: SimTask): Promise<void> {
    const { stats, hmacKey, logger } = this.deps;
    const live = this.deps.dialect === 'live';
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': live ? HUTOOL_USER_AGENT : 'kie-sim/1 (callback)',
      ...(live ? { accept: 'text/html,application/json,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', 'accept-language': 'zh-CN,zh;q=0.8' } : {}),
    };
    if (hmacKey) {
      const ts = Math.floor(Date.now() / 1000);
      headers['x-webhook-timestamp'] = String(ts);
      headers['x-webhook-signature'] = signCallback(task.taskId, ts, hmacKey);
    }
    task.callbacksSent++;
    stats.counters.callbacksSent++;
    try {
      const res = await fetch(task.callBackUrl as string, {
        method: 'POST',
        headers,
        body: JSON.stringify(callbackBody(task, { dialect: this.deps.dialect })),
        signal: AbortSignal.any([AbortSignal.timeout(DELIVERY_TIMEOUT_MS), this.abort.signal]),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (!res.ok) {
        stats.counters.callbacksFailed++;
        logger.debug(
          { taskId: task.taskId, status: res.status },
          'sim: callback answered non-2xx (not retried)',
        );
      }
    } catch (e) {
      stats.counters.callbacksFailed++;
      logger.debug({ taskId: task.taskId, err: e }, 'sim: callback failed (not retried)');
    }
  }

  /** Cancels scheduled callbacks and aborts those under way. */
  async stop(): Promise<void> {
    this.abort.abort();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await Promise.allSettled([...this.inflight]);
  }
}
