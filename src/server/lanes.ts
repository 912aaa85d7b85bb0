/**
 * What the server shows about the lanes (dashboard, /healthz, /metrics): paused or not, why, whether a 429/455
 * slow-down is in force, and BullMQ's job counts. Read-only: it never changes a lane.
 */
import { LANE_COUNT_TYPES, laneStatus, type LaneCountType, type LaneStatus, type LaneStatusMap } from '../queue/lane-status.js';
import { formatDuration } from '../config/units.js';

/** BullMQ job states counted per lane (a paused queue keeps its jobs in `waiting`). */
export const JOB_STATES = LANE_COUNT_TYPES;
export type JobStateName = LaneCountType;
export type LaneView = LaneStatus;
export type LaneViews = LaneStatusMap;

/** Reads every lane's state (the same view as `upscale status`); rejects when Redis does not answer. */
export const readLanes = laneStatus;

/** Resolves `promise`, or rejects with `Error(what + ' timed out')` after `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${formatDuration(ms)}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
    promise.catch(() => undefined);
  }
}
