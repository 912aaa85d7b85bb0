/**
 * What each lane is doing: paused or not and why, slowed down or not, and BullMQ's job counts. Read by
 * `upscale status`, the dashboard and `/metrics`; it only reads (the operator controls live in `src/control`).
 */
import type { Redis } from 'ioredis';
import { LANES, type Keys, type Lane } from './names.js';
import { getPauseReason, type PauseReason } from './pause-reason.js';
import type { Queues } from './queues.js';

export type { PauseReason } from './pause-reason.js';

/** The parts of a runtime lane status reads (a `Runtime` is one). */
export interface LaneStatusSource {
  readonly redis: Redis;
  readonly queues: Queues;
  readonly store: { readonly keys: Keys };
}

export interface LaneStatus {
  paused: boolean;
  reason: PauseReason | null;
  /** A global slow-down after a 429/455 is in force (`keys.slowdown(lane)` exists). */
  slowedDown: boolean;
  /** BullMQ job counts: waiting, prioritized, delayed, active, completed, failed (a paused queue keeps its jobs in waiting). */
  counts: Record<LaneCountType, number>;
}

export type LaneStatusMap = Record<Lane, LaneStatus>;

/** BullMQ job states counted for each lane. */
export const LANE_COUNT_TYPES = ['waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed'] as const;
export type LaneCountType = (typeof LANE_COUNT_TYPES)[number];

/** Paused or not, why, slowed down or not, and BullMQ's job counts, for every lane. */
export async function laneStatus(rt: LaneStatusSource): Promise<LaneStatusMap> {
  const entries = await Promise.all(
    LANES.map(async (lane): Promise<[Lane, LaneStatus]> => {
      const queue = rt.queues[lane];
      const [paused, reason, slowed, counts] = await Promise.all([
        queue.isPaused(),
        getPauseReason(rt.redis, rt.store.keys, lane),
        rt.redis.exists(rt.store.keys.slowdown(lane)),
        queue.getJobCounts(...LANE_COUNT_TYPES),
      ]);
      const full = Object.fromEntries(LANE_COUNT_TYPES.map((s) => [s, counts[s] ?? 0])) as Record<LaneCountType, number>;
      return [lane, { paused, reason, slowedDown: slowed === 1, counts: full }];
    }),
  );
  return Object.fromEntries(entries) as LaneStatusMap;
}
