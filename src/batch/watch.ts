/**
 * The batch watch: a timer loop in every worker process, beside the lanes (never inside one). Each tick it
 * finalizes the batches that completed (finalizer.ts); every `watchEveryMs` it also looks for what deserves a
 * notification and applies the batches' own rules:
 * - `batch.paused`: a lane paused (401/402, `credits`, manual), once per pause;
 * - `batch.stalled`: work remains but no image finished for STALL_AFTER, once per stall;
 * - the completion window (deadline.ts): images not submitted when a batch's deadline passes become `expired`;
 * - the pilot (pilot.ts): when a pilot's images are all done, `batch.paused` with its outcome, once;
 * - the credit runway (src/worker/runway.ts): the balance read, once a minute for all processes.
 * Any number of processes run the same loop: each step is claimed or deduplicated in Redis.
 */
import { TickLoop } from '../tick-loop.js';
import type { Logger } from '../log.js';
import { batchPaused, batchStalled, clearOccurrence, emit, emitOnce } from '../notify/index.js';
import { laneStatus } from '../queue/lane-status.js';
import type { Lane } from '../queue/names.js';
import type { BatchSummary } from '../results/record.js';
import type { Runtime } from '../runtime.js';
import { expireDue } from './deadline.js';
import { Finalizer, type FinalizerOptions } from './finalizer.js';
import { watchPilots } from './pilot.js';

export interface WatchOptions {
  /** Time between ticks (finalizer). @defaultValue `1000` ms */
  tickMs?: number;
  /** Time between the notification, deadline and pilot looks. @defaultValue `5000` ms */
  watchEveryMs?: number;
  finalizer?: FinalizerOptions;
  /** Extra steps run with the slower looks (the worker adds the credit runway). */
  extra?: ((batches: BatchSummary[], now: number) => Promise<void>)[];
}

const API_LANES: readonly Lane[] = ['submit', 'poll'];

/**
 * What a paused lane's notification asks of people: the message's own advice when it names `upscale resume`, a plain
 * resume after `upscale pause` (nothing to fix), else fixing the cause first.
 */
export function resumeAction(reason: { code: string; message: string }): string {
  if (/upscale resume/.test(reason.message)) return 'see the message';
  if (reason.code === 'manual') return 'run `upscale resume` when it should go on';
  return 'fix the cause, then run `upscale resume`';
}

export class BatchWatch {
  readonly finalizer: Finalizer;
  private loop: TickLoop | null = null;
  private lastWatch = 0;
  private readonly tickMs: number;
  private readonly watchEveryMs: number;

  constructor(
    private readonly rt: Runtime,
    private readonly log: Logger = rt.log,
    private readonly options: WatchOptions = {},
  ) {
    this.finalizer = new Finalizer(rt, log, options.finalizer);
    this.tickMs = options.tickMs ?? 1000;
    this.watchEveryMs = options.watchEveryMs ?? 5000;
  }

  start(): void {
    this.loop ??= new TickLoop(() => this.tick(), this.tickMs, this.log, 'batch watch');
    this.loop.start();
  }

  async stop(): Promise<void> {
    await this.loop?.stop();
  }

  async tick(now = Date.now()): Promise<void> {
    if (now - this.lastWatch >= this.watchEveryMs) {
      this.lastWatch = now;
      const batches = await this.rt.store.listBatches(now);
      const open = batches.filter((b) => b.finalizedAt === null);
      await this.step('deadline', () => expireDue(this.rt, open, now, this.log));
      await this.step('pilot', () => watchPilots(this.rt, open, now));
      await this.step('paused', () => this.watchPauses(open, now));
      await this.step('stalled', () => this.watchStalls(open, now));
      for (const extra of this.options.extra ?? []) await this.step('extra', () => extra(open, now));
    }
    await this.step('finalizer', () => this.finalizer.runDue());
  }

  private async step(name: string, run: () => Promise<unknown>): Promise<void> {
    try {
      await run();
    } catch (err) {
      this.log.warn({ err, step: name }, 'batch watch step failed; trying again next tick');
    }
  }

  /** `batch.paused` once per pause of an API lane; the mark goes when the lane runs again. */
  private async watchPauses(open: BatchSummary[], now: number): Promise<void> {
    const lanes = await laneStatus(this.rt);
    for (const lane of API_LANES) {
      const l = lanes[lane];
      const mark = this.rt.store.keys.notifyMark(`paused:${lane}`);
      if (!l.paused) {
        await clearOccurrence(this.rt, mark);
        continue;
      }
      const reason = l.reason ?? { code: 'unknown', message: 'paused without a recorded reason', at: now };
      const waiting = open.filter((b) => b.counts.waiting + b.counts.submitting > 0 || (lane === 'poll' && b.counts.polling > 0)).map((b) => b.batchId);
      const action = resumeAction(reason);
      await emitOnce(this.rt, mark, batchPaused({ lane, code: reason.code, message: reason.message, since: reason.at || now, batches: waiting, action }, now), { now });
    }
  }

  /** `batch.stalled` once per stall: remaining work and no image finished for STALL_AFTER. */
  private async watchStalls(open: BatchSummary[], now: number): Promise<void> {
    const stallAfter = this.rt.config.stallAfterMs;
    for (const b of open) {
      const remaining = b.counts.waiting + b.counts.submitting + b.counts.polling + (b.downloadsPending ?? 0);
      if (remaining === 0) continue;
      const lastDoneAt = Number(await this.rt.redis.hget(this.rt.store.keys.batch(b.batchId), 'lastDoneAt')) || 0;
      const since = Math.max(lastDoneAt, b.startedAt ?? 0, b.createdAt ?? 0, b.pilotApprovedAt ?? 0);
      if (since === 0 || now - since < stallAfter) continue;
      await emit(this.rt, batchStalled({ batchId: b.batchId, since, stallAfterMs: stallAfter, remaining, counts: b.counts }, now), now);
    }
  }
}
