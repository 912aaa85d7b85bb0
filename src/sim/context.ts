/** Everything the simulator's routes share: options, state, counters and the parts that do the work. */
import type { Logger } from '../log.js';
import type { CallbackSender } from './callbacks.js';
import type { FaultState } from './faults.js';
import type { FileStore } from './files.js';
import type { LightOutputs } from './light.js';
import type { KeyedLimiter } from './limits.js';
import type { ResolvedOptions } from './options.js';
import type { StatsCollector, SimStats } from './stats.js';
import type { TaskStore } from './tasks.js';

export interface SimContext {
  opts: ResolvedOptions;
  logger: Logger;
  stats: StatsCollector;
  faults: FaultState;
  createLimiter: KeyedLimiter;
  queryLimiter: KeyedLimiter;
  /** The account's credit balance (reserved at createTask, refunded when a task fails). */
  credits: { balance: number };
  files: FileStore;
  tasks: TaskStore;
  /** Light mode's shared outputs and inspections (`SimOptions.light`); null otherwise. */
  light: LightOutputs | null;
  callbacks: CallbackSender;
  /** `http://host:port` of the running server (or the configured public URL). */
  baseUrl(): string;
  /** Aborted when the simulator stops (cancels input fetches). */
  stopSignal: AbortSignal;
}

/** A snapshot of the counters with the derived fields. */
export function statsOf(ctx: SimContext): SimStats {
  const counts = ctx.tasks.counts();
  return {
    ...ctx.stats.counters,
    peakCreateInWindow: ctx.createLimiter.peak(),
    peakQueriesInWindow: ctx.queryLimiter.peak(),
    createLimit: { ...ctx.opts.createLimit },
    queryLimit: { ...ctx.opts.queryLimit },
    ...ctx.stats.inputs(),
    callsByPath: ctx.stats.callsByPath(),
    tasksSucceeded: counts.succeeded,
    tasksFailed: counts.failed,
    tasksInFlight: counts.inFlight,
    credits: ctx.credits.balance,
  };
}
