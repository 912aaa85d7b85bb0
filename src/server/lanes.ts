/**
 * What the server shows about the lanes (dashboard, /healthz, /metrics): paused or not, why, whether a 429/455
 * slow-down is in force, and BullMQ's job counts. Read-only: it never changes a lane.
 */
import type { Runtime } from '../runtime.js';
import { LANES, type Lane } from '../queue/names.js';
import { getPauseReason, type PauseReason } from '../queue/pause-reason.js';

/** BullMQ job states counted per lane (a paused queue keeps its jobs in `waiting`). */
export const JOB_STATES = ['waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed'] as const;
export type JobStateName = (typeof JOB_STATES)[number];

export interface LaneView {
  paused: boolean;
  /** Why the lane was paused (`401`, `402`, `manual`), when recorded. */
  reason: PauseReason | null;
  /** A global slow-down after a 429/455 is in force. */
  slowedDown: boolean;
  counts: Record<JobStateName, number>;
}

export type LaneViews = Record<Lane, LaneView>;

/** Reads every lane's state; rejects when Redis does not answer. */
export async function readLanes(rt: Runtime): Promise<LaneViews> {
  const entries = await Promise.all(
    LANES.map(async (lane): Promise<[Lane, LaneView]> => {
      const queue = rt.queues[lane];
      const [paused, reason, slowed, counts] = await Promise.all([
        queue.isPaused(),
        getPauseReason(rt.redis, rt.store.keys, lane),
        rt.redis.exists(rt.store.keys.slowdown(lane)),
        queue.getJobCounts(...JOB_STATES),
      ]);
      const full = Object.fromEntries(JOB_STATES.map((s) => [s, counts[s] ?? 0])) as Record<
        JobStateName,
        number
      >;
      return [lane, { paused, reason, slowedDown: slowed === 1, counts: full }];
    }),
  );
  return Object.fromEntries(entries) as LaneViews;
}

/** Resolves `promise`, or rejects with `Error(what + ' timed out')` after `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
    promise.catch(() => undefined);
  }
}
