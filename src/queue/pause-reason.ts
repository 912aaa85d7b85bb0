/**
 * Pausing a lane with a reason people can read in `upscale status`, the dashboard, /healthz and /metrics.
 *
 * A reason is JSON under `keys.pauseReason(lane)`: `{ code, message, at, source?, probe? }`. `code` names the cause
 * (`401`, `402`, `433` from kie.ai, `breaker` for the submit circuit breaker, `manual` for `upscale pause`; other
 * modules may add their own codes). A reason with `probe` is lifted by the lane itself once a probe succeeds
 * (src/worker/lane-probe.ts); one without is lifted only by `upscale resume`.
 */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Keys, Lane } from './names.js';
import { formatDuration } from '../config/units.js';

/** How a paused lane checks, on its own, whether the cause has cleared. */
export interface ProbeInfo {
  /**
   * `key`: one free call (the credit balance) proves the API key works again (401).
   * `image`: one image is let through the paused lane; its createTask answer decides (402, 433, breaker).
   * `store`: a small write-read of a probe object in the output store decides (the download lane, code `storage`).
   */
  kind: 'key' | 'image' | 'store';
  /** Earliest start of the next probe (Unix ms). */
  at: number;
  /** Probes tried so far during this pause. */
  tries: number;
  /** An image probe is under way: the queue is resumed and exactly one image may send (src/worker/probe-gate.ts). */
  running: boolean;
  /** When the running probe started (Unix ms). */
  startedAt?: number;
  /** Breaker pauses: `code msg` of the failure that tripped it; the probe meeting it again pauses at once. */
  signature?: string;
  /** What the last probe met, for people (`433 The current number of points ...`). */
  last?: string;
}

export interface PauseReason {
  /**
   * `401`, `402`, `433`, `breaker`, `manual`, `storage` (the download lane: the output store refused the credentials
   * or permissions, the bucket is missing, or the store cannot be reached or is not answering), or another
   * module's code.
   */
  code: string;
  message: string;
  /** When the lane was paused (Unix ms). */
  at: number;
  /** The lane whose answer caused the pause, when a lane paused it (a 401 while polling pauses submission too). */
  source?: Lane;
  /** Present when the lane resumes on its own after a successful probe. */
  probe?: ProbeInfo;
  /**
   * `credits` pauses (src/worker/runway.ts): the credits a balance read must show free, after the sends in flight,
   * for the pause to lift by itself.
   */
  resumeAbove?: number;
}

export async function setPauseReason(redis: Redis, keys: Keys, lane: Lane, reason: PauseReason): Promise<void> {
  await redis.set(keys.pauseReason(lane), JSON.stringify(reason));
}

export async function pauseLane(redis: Redis, keys: Keys, queue: Queue, lane: Lane, reason: Omit<PauseReason, 'at'> & { at?: number }): Promise<void> {
  await setPauseReason(redis, keys, lane, { ...reason, at: reason.at ?? Date.now() });
  await queue.pause();
}

export function parsePauseReason(raw: string): PauseReason {
  try {
    const r = JSON.parse(raw) as PauseReason;
    if (typeof r === 'object' && r !== null && typeof r.code === 'string') return r;
  } catch {
    // fall through
  }
  return { code: 'unknown', message: raw, at: 0 };
}

export async function getPauseReason(redis: Redis, keys: Keys, lane: Lane): Promise<PauseReason | null> {
  const raw = await redis.get(keys.pauseReason(lane));
  return raw ? parsePauseReason(raw) : null;
}

/** KEYS: reason key. ARGV: expected JSON ('' = must be absent), new JSON ('' = delete). Returns 1 when swapped. */
const SWAP = `
local cur = redis.call('GET', KEYS[1])
if (cur or '') ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2]) end
return 1
`;

/**
 * Replaces a lane's reason only if it is still exactly `expected` (the raw JSON read before), so two workers never
 * both start a probe, and a probe never undoes a newer pause. `next` null deletes the reason. True when swapped.
 */
export async function swapPauseReason(redis: Redis, keys: Keys, lane: Lane, expected: string | null, next: PauseReason | null): Promise<boolean> {
  const r = await redis.eval(SWAP, 1, keys.pauseReason(lane), expected ?? '', next ? JSON.stringify(next) : '');
  return r === 1;
}

/**
 * One line for people about a reason's probe: `probing with one image now`, or `next probe at 2026-11-30 00:00:00
 * UTC (in 3h12m; 2 tried)`; '' when the reason has no probe (only `upscale resume` lifts it).
 */
export function describeProbe(reason: PauseReason, now: number): string {
  const p = reason.probe;
  if (!p) return '';
  const tried = p.tries > 0 ? `; ${p.tries} tried${p.last ? `, last met ${p.last.slice(0, 120)}` : ''}` : '';
  const what = p.kind === 'key' ? 'credit call' : p.kind === 'store' ? 'probe write to the store' : 'image';
  if (p.running) return `probing with one ${what} now${tried}`;
  const at = new Date(p.at).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  const wait = formatDuration(Math.max(0, p.at - now));
  return `resumes on its own: next probe (one ${what}) at ${at} (in ${wait}${tried})`;
}
