/**
 * Callbacks that arrive before their poll job exists: kie.ai can finish a task and call back while createTask's
 * answer is still on its way, or before the submit lane has added the poll job. Such a callback is remembered in
 * Redis (never in one process' memory, so any server and any worker see it, and a restart loses nothing) under the
 * submit job id, for at least POLL_DEADLINE. The submit lane, right after adding the poll job, takes the memory and
 * promotes the job, so the task is checked at once instead of at its first scheduled check.
 *
 * Order makes it race-free: the receiver writes the memory *then* looks for the poll job; the lane adds the poll job
 * *then* reads the memory. Whichever comes second sees the other's write.
 */
import type { Redis } from 'ioredis';
import type { Keys } from './names.js';

/** What is remembered: the taskId the callback named (null when its body could not be read), and when it came. */
export interface EarlyCallback {
  taskId: string | null;
  at: number;
}

/** Remembers a callback for `submitJobId` for `ttlMs` (at least POLL_DEADLINE). A later callback replaces it. */
export async function rememberEarlyCallback(redis: Redis, keys: Keys, submitJobId: string, taskId: string | null, ttlMs: number): Promise<void> {
  const value: EarlyCallback = { taskId, at: Date.now() };
  await redis.set(keys.earlyCallback(submitJobId), JSON.stringify(value), 'PX', Math.max(1000, Math.round(ttlMs)));
}

/** Reads the remembered callback of `submitJobId` without deleting it, or null. */
export async function peekEarlyCallback(redis: Redis, keys: Keys, submitJobId: string): Promise<EarlyCallback | null> {
  return parseEarly(await redis.get(keys.earlyCallback(submitJobId)));
}

/** Reads and deletes the remembered callback of `submitJobId`, or null. */
export async function takeEarlyCallback(redis: Redis, keys: Keys, submitJobId: string): Promise<EarlyCallback | null> {
  return parseEarly(await redis.getdel(keys.earlyCallback(submitJobId)));
}

function parseEarly(raw: string | null): EarlyCallback | null {
  if (!raw) return null;
  try {
    return JSON.parse(raw) as EarlyCallback;
  } catch {
    return { taskId: null, at: 0 };
  }
}
