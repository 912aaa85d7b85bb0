/**
 * The stop of a long-running command (`upscale worker`, `upscale serve`): SIGINT or SIGTERM runs `close`; a second
 * signal exits at once (1); and whatever Redis or the network do, the process exits 0 `deadlineMs` after the first
 * signal if `close` has not finished by then (with `late` logged). Resolves once `close` has finished.
 */
import type { Logger } from '../log.js';

export interface StopOptions {
  /** ms after the first signal at which the process exits 0 regardless. */
  deadlineMs: number;
  /** What to log when the deadline is reached first. */
  late: { message: string; fields: Record<string, unknown> };
  /** The orderly stop, given the signal's name (a rejection is logged). */
  close: (signal: string) => Promise<void>;
}

export function untilStopped(log: Logger, o: StopOptions): Promise<void> {
  return new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting now');
        process.exit(1);
      }
      stopping = true;
      setTimeout(() => {
        log.warn(o.late.fields, o.late.message);
        process.exit(0);
      }, o.deadlineMs).unref();
      void o.close(signal).catch((err: unknown) => log.error({ err }, 'error while stopping')).finally(resolve);
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}
