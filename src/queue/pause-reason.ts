/** Pausing a lane with a reason people can read in `upscale status`, the dashboard and /healthz. */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Keys, Lane } from './names.js';

export interface PauseReason {
  /** `401`, `402`, `storage` (the download lane: the output store refused credentials or permissions), or `manual`. */
  code: string;
  message: string;
  at: number;
}

export async function pauseLane(redis: Redis, keys: Keys, queue: Queue, lane: Lane, reason: Omit<PauseReason, 'at'>): Promise<void> {
  await redis.set(keys.pauseReason(lane), JSON.stringify({ ...reason, at: Date.now() }));
  await queue.pause();
}

export async function getPauseReason(redis: Redis, keys: Keys, lane: Lane): Promise<PauseReason | null> {
  const raw = await redis.get(keys.pauseReason(lane));
  if (!raw) return null;
  try {
    return JSON.parse(raw) as PauseReason;
  } catch {
    return { code: 'unknown', message: raw, at: 0 };
  }
}
