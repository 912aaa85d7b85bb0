/**
 * Admission in a worker process: keeps the submit queue's wait list topped up with held jobs, in the batch
 * scheduler's fair order (src/queue/fair-share.ts). It runs when a submit job starts (so each start is refilled
 * within a round trip or two, before the limiter's next slot), when this process resubmits an image, and on a timer
 * (`ADMIT_TICK_MS`) that starts the first jobs of a batch enqueued while the lane was idle and promotes ids left
 * behind by a process that died mid-admission. Calls are coalesced: at most one admission runs per process, and
 * kicks during it cause one more round.
 */
import type { Logger } from '../log.js';
import type { FairShare } from '../queue/fair-share.js';

/** Timer period of admission when nothing else triggers it (ms). */
export const ADMIT_TICK_MS = 500;

export class Admission {
  private running = false;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private lastError = 0;
  /** Jobs promoted by this process (for tests and logs). */
  promoted = 0;

  constructor(
    readonly fair: FairShare,
    /** Jobs kept waiting in the submit queue (`lookaheadFor(KIE_CREATE_LIMIT)`). */
    readonly target: number,
    private readonly log: Logger,
  ) {}

  /** Asks for an admission round soon; never throws (errors are logged, at most every 10 s). */
  kick(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.rounds();
  }

  private async rounds(): Promise<void> {
    try {
      do {
        this.again = false;
        this.promoted += (await this.fair.admit(this.target)).length;
      } while (this.again);
    } catch (err) {
      if (Date.now() - this.lastError > 10_000) {
        this.lastError = Date.now();
        this.log.warn({ err }, 'admission of held submit jobs failed (retrying at the next start or tick)');
      }
    } finally {
      this.running = false;
    }
  }

  /** Starts the timer. */
  start(intervalMs = ADMIT_TICK_MS): void {
    this.stop();
    this.timer = setInterval(() => this.kick(), intervalMs);
    this.timer.unref();
    this.kick();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
