/**
 * The worker process' stop: two signals the lanes read, and the wrapper that turns a stop into a job given back.
 *
 * - `draining` fires at SIGTERM/SIGINT (`WorkerHandle.close()`): nothing new starts, neither a job (BullMQ stops
 *   fetching; a job that still arrives is given back untouched) nor a step inside a running job that has not begun
 *   (a queued download, a createTask not yet sent).
 * - `aborted` fires at the drain deadline (SHUTDOWN_TIMEOUT): every HTTP call and download in flight is aborted
 *   through its AbortSignal; the lane throws {@link StopError}; the job goes back to `waiting` without spending an
 *   attempt (BullMQ's RateLimitError path, `job.moveToWait`) and resumes from its checkpoints in another worker or
 *   after a restart.
 */
import { setMaxListeners } from 'node:events';
import { Worker, type Job, type Processor } from 'bullmq';

/** Thrown by a lane when the process stops mid-job; the job is given back, not failed. */
export class StopError extends Error {
  override readonly name = 'StopError';
  constructor(what = 'the worker is stopping') {
    super(what);
  }
}

/** True for a {@link StopError}, by class or name (survives module copies). */
export function isStopError(e: unknown): boolean {
  return e instanceof StopError || (e as { name?: unknown } | null)?.name === 'StopError';
}

export class Stopper {
  readonly #draining = new AbortController();
  readonly #aborted = new AbortController();

  constructor() {
    // Every call in flight (createTask, recordInfo, an input's fetch, an upload, a download) listens to these for its
    // duration and stops listening when it ends; with 16 jobs per lane and three lanes, far more than Node's 10 are
    // in flight at once, and its "Possible EventTarget memory leak detected" warning would be a false alarm.
    setMaxListeners(0, this.#draining.signal, this.#aborted.signal);
  }

  /** Fires when the drain begins: start nothing new. */
  get draining(): AbortSignal {
    return this.#draining.signal;
  }

  /** Fires at the drain deadline: abort what runs. Pass it to every HTTP call and download. */
  get aborted(): AbortSignal {
    return this.#aborted.signal;
  }

  drain(): void {
    this.#draining.abort(new StopError('the worker is draining'));
  }

  abort(): void {
    this.drain();
    this.#aborted.abort(new StopError('the drain deadline passed'));
  }

  /** Throws StopError once the drain has begun: call before starting a step that may not be interrupted cleanly. */
  throwIfDraining(): void {
    if (this.#draining.signal.aborted) throw new StopError('the worker is draining');
  }

  /** Throws StopError when the deadline has passed: call first in a `catch`, so an aborted call is not judged. */
  throwIfAborted(): void {
    if (this.#aborted.signal.aborted) throw new StopError('the drain deadline passed');
  }
}

/**
 * Wraps a lane's processor: a job that starts after the drain began is given back at once, and a run that ends in
 * a StopError (or any error once the deadline passed) gives its job back instead of failing it. Parking signals
 * (DelayedError, RateLimitError) pass through unchanged.
 */
export function stoppable<T, R>(processor: Processor<T, R>, stopper: Stopper): Processor<T, R> {
  return async function stoppableProcessor(job: Job<T, R>, token?: string): Promise<R> {
    if (stopper.draining.aborted) throw Worker.RateLimitError();
    try {
      return await processor(job, token);
    } catch (e) {
      if (isStopError(e) || (stopper.aborted.aborted && !isControlFlow(e))) throw Worker.RateLimitError();
      throw e;
    }
  };
}

function isControlFlow(e: unknown): boolean {
  const name = (e as { name?: unknown } | null)?.name;
  const message = (e as { message?: unknown } | null)?.message;
  return name === 'DelayedError' || name === 'WaitingError' || message === Worker.RateLimitError().message;
}
