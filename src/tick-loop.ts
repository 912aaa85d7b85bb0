/**
 * A timer loop beside the lanes (the batch watch, the notification deliverer): runs `tick` at once, then `everyMs`
 * after each tick ends (never two at a time), logs a failed tick and goes on; `stop()` resolves once the running
 * tick has ended.
 */
import type { Logger } from './log.js';

export class TickLoop {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;

  /** @param everyMs pause between the end of one tick and the start of the next, ms. @param what names it in the log. */
  constructor(
    private readonly tick: () => Promise<unknown>,
    private readonly everyMs: number,
    private readonly log: Logger,
    private readonly what: string,
  ) {}

  start(): void {
    if (this.timer || this.stopped) return;
    const loop = () => {
      this.running = this.tick()
        .then(() => undefined)
        .catch((err: unknown) => this.log.warn({ err }, `${this.what} tick failed`))
        .finally(() => {
          this.running = null;
          if (!this.stopped) this.timer = setTimeout(loop, this.everyMs);
        });
    };
    this.timer = setTimeout(loop, 0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }
}
