/**
 * The batch scheduler: many batches share one create budget, fairly.
 *
 * BullMQ's submit queue is FIFO, so a 100,000-image backfill would hold back a 50-image batch enqueued after it for
 * the 14 hours the backfill takes at 20 per 10 s. Instead, a batch's submit jobs are *held*: added as BullMQ jobs
 * delayed by `HOLD_MS` (a year), so BullMQ keeps their identity, idempotency and data, and their ids are indexed
 * per batch (`keys.held(batchId)`, a ZSET in arrival order). *Admission* moves a few at a time into the queue's
 * wait list (`Job.promote`), just ahead of the limiter: `lookaheadFor(KIE_CREATE_LIMIT)` jobs, about a quarter
 * second of budget. Which batch's job is admitted next is decided by start-time fair queueing (stride scheduling):
 *
 * - every batch with held jobs and an open gate is in a ZSET scored by its *pass* (virtual time);
 * - admission takes the batch with the lowest pass, pops its first held job (images coming back — resubmissions, retries — before new arrivals, see `HoldPlace`), and advances its pass by its stride:
 *   `high` 1, `normal` 2, `low` 4 (weights 4 : 2 : 1). The clock is the pass of the last admitted job, and a batch
 *   that (re)gains work starts at max(its saved pass, the clock): it competes at once, with no credit for idle time;
 * - `urgent` batches are in a second ZSET served first, outright (round-robin among themselves).
 *
 * Every step is O(log B) for B batches with work (plus O(log n) in BullMQ's delayed ZSET per job): nothing scans
 * the queue or a batch, whatever their size.
 *
 * **Batch gates.** A batch's `gate` field (JSON `BatchGate`, in its summary hash `keys.batch(id)`) closes admission
 * for that batch: its held jobs stay held, and jobs of it that were already admitted are held again when a worker
 * starts them (`submit-lane.ts`), unless they carry a taskId (tasks already created are followed to the end).
 * `paused` is the operator's (`upscale pause --batch`); other batch-level gates (a pilot that holds a batch until it
 * is approved, a completion window) plug in as further `GateState`s with no change here: admission only asks
 * whether a gate is set. A batch gate is distinct from a lane pause (`pause-reason.ts`, BullMQ's `queue.pause()`),
 * which stops the whole submit lane for every batch.
 *
 * **Crash safety.** Admission pops ids into `keys.schedAdmitting` (ZSET id → time) before promoting them, and
 * removes them after. An id left there by a process that died in between is promoted by the next admission past
 * `STALE_ADMIT_MS`. Only a job still held (its delayed score lies past half the hold) is ever promoted, so a stale
 * or duplicate id never promotes a job that is waiting out a retry backoff or a callback grace.
 */
import { Job, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { RateLimit } from '../config/units.js';
import { runScript } from '../results/scripts.js';
import type { Keys } from './names.js';

export const PRIORITIES = ['urgent', 'high', 'normal', 'low'] as const;
export type Priority = (typeof PRIORITIES)[number];
/** @defaultValue of a batch's priority */
export const DEFAULT_PRIORITY: Priority = 'normal';

/** Share of the create budget per priority while batches compete (urgent goes first outright). */
export const PRIORITY_WEIGHTS: Record<Exclude<Priority, 'urgent'>, number> = { high: 4, normal: 2, low: 1 };

export function isPriority(value: string): value is Priority {
  return (PRIORITIES as readonly string[]).includes(value);
}

/** Why a batch admits nothing: `paused` by the operator; further batch-level gates extend this union. */
export type GateState = 'paused';

/** A closed batch gate, as stored (JSON) in the batch's summary hash. `at` is Unix ms. */
export interface BatchGate {
  state: GateState;
  reason: string;
  at: number;
}

/** How long a held job is delayed in BullMQ (ms): a year, so it never comes due while its batch waits its turn. */
export const HOLD_MS = 365 * 24 * 3600 * 1000;
/** An id popped for admission and not promoted within this long (its process died) is promoted by the next. */
export const STALE_ADMIT_MS = 30_000;
/** Stale ids looked at per admission. */
const SWEEP_LIMIT = 100;

/**
 * How many admitted jobs to keep in the submit queue's wait list: the starts the limiter allows in 250 ms, at least
 * 2, at most 256. Admission runs at every job start, so this only has to cover a few Redis round trips; it is also
 * the most a newly enqueued (or urgent) batch waits behind jobs already admitted.
 */
export function lookaheadFor(limit: RateLimit): number {
  return Math.min(256, Math.max(2, Math.ceil((limit.max * 250) / limit.durationMs)));
}

/** BullMQ's delayed ZSET score is `timestamp * 0x1000 + counter` (bullmq 6, commands/includes/getDelayedScore.lua). */
function heldScoreFloor(now: number): number {
  return (now + HOLD_MS / 2) * 0x1000;
}

/**
 * Held score of the first `first`-placed job: far below every arrival (scores 1, 2, ...), and exact in a double
 * for 8 * 10^15 further `first` jobs.
 */
const FIRST_BASE = -1e15;

const LIB = `
local function strideOf(p)
  if p == 'high' then return 1 elseif p == 'low' then return 4 else return 2 end
end
-- KEYS of these helpers: batch hash, held zset, ready zset, urgent zset, clock hash
local function queueIfReady(batchKey, heldKey, readyKey, urgentKey, clockKey, batchId)
  if redis.call('HEXISTS', batchKey, 'gate') == 1 then return end
  if redis.call('ZCARD', heldKey) == 0 then return end
  local setKey, domain = readyKey, 'ready'
  if redis.call('HGET', batchKey, 'priority') == 'urgent' then setKey, domain = urgentKey, 'urgent' end
  if redis.call('ZSCORE', setKey, batchId) then return end
  local v = tonumber(redis.call('HGET', clockKey, domain) or '0')
  local saved = tonumber(redis.call('HGET', batchKey, 'pass') or '0')
  redis.call('ZADD', setKey, math.max(v, saved), batchId)
end
local function unqueue(batchKey, readyKey, urgentKey, batchId)
  for _, k in ipairs({ readyKey, urgentKey }) do
    local s = redis.call('ZSCORE', k, batchId)
    if s then
      redis.call('ZREM', k, batchId)
      if redis.call('EXISTS', batchKey) == 1 then redis.call('HSET', batchKey, 'pass', s) end
    end
  end
end
`;

/**
 * KEYS: batch hash, held zset, ready, urgent, clock. ARGV: batchId, retention ms, place (`rehold`: before every
 * held job; `first`: after other `first` jobs, before every new arrival; `arrival`: last), job ids... Returns the
 * batch's held count. Scores: arrivals count up from 1 (`seq`), `first` jobs from FIRST_BASE (`fseq`), reheld jobs
 * below the lowest score held (scores are passed as '%.0f' text: Redis' Lua would print a number with 14 digits).
 */
const HOLD = `${LIB}
local n = #ARGV - 3
if n > 0 then
  if ARGV[3] == 'rehold' then
    local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    local score = (first[2] and tonumber(first[2]) or 0) - n
    for i = 4, #ARGV do redis.call('ZADD', KEYS[2], string.format('%.0f', score + i - 4), ARGV[i]) end
  elseif ARGV[3] == 'first' then
    local base = ${FIRST_BASE} + redis.call('HINCRBY', KEYS[5], 'fseq', n) - n
    for i = 4, #ARGV do redis.call('ZADD', KEYS[2], string.format('%.0f', base + i - 3), ARGV[i]) end
  else
    local base = redis.call('HINCRBY', KEYS[5], 'seq', n) - n
    for i = 4, #ARGV do redis.call('ZADD', KEYS[2], 'NX', string.format('%.0f', base + i - 3), ARGV[i]) end
  end
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
queueIfReady(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[1])
return redis.call('ZCARD', KEYS[2])
`;

/**
 * KEYS: ready, urgent, clock, admitting, BullMQ wait list, BullMQ delayed zset.
 * ARGV: batch key prefix (`<prefix>:batch:`), target, now, held score floor, stale-before time, sweep limit.
 * Returns the ids to promote now (each also entered in the admitting set).
 */
const ADMIT = `${LIB}
local floor = tonumber(ARGV[4])
local function isHeld(id)
  local s = redis.call('ZSCORE', KEYS[6], id)
  return s and tonumber(s) >= floor
end
local out = {}
local stale = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', ARGV[5], 'LIMIT', 0, tonumber(ARGV[6]))
for _, id in ipairs(stale) do
  if isHeld(id) then
    out[#out + 1] = id
    redis.call('ZADD', KEYS[4], ARGV[3], id)
  else
    redis.call('ZREM', KEYS[4], id)
  end
end
local want = tonumber(ARGV[2]) - redis.call('LLEN', KEYS[5]) - redis.call('ZCARD', KEYS[4])
local tries = want * 4 + 64
while want > 0 and tries > 0 do
  tries = tries - 1
  local setKey, domain = KEYS[2], 'urgent'
  local top = redis.call('ZRANGE', setKey, 0, 0, 'WITHSCORES')
  if #top == 0 then
    setKey, domain = KEYS[1], 'ready'
    top = redis.call('ZRANGE', setKey, 0, 0, 'WITHSCORES')
  end
  if #top == 0 then break end
  local b, pass = top[1], tonumber(top[2])
  local batchKey = ARGV[1] .. b
  local popped = redis.call('ZPOPMIN', batchKey .. ':held')
  if #popped == 0 then
    redis.call('ZREM', setKey, b)
    if redis.call('EXISTS', batchKey) == 1 then redis.call('HSET', batchKey, 'pass', pass) end
  elseif isHeld(popped[1]) then
    out[#out + 1] = popped[1]
    redis.call('ZADD', KEYS[4], ARGV[3], popped[1])
    want = want - 1
    redis.call('HSET', KEYS[3], domain, pass)
    redis.call('ZADD', setKey, pass + strideOf(redis.call('HGET', batchKey, 'priority')), b)
  end
end
return out
`;

/** KEYS: batch hash, held zset, ready, urgent, clock. ARGV: batchId, priority. Returns the old priority, or -1. */
const SET_PRIORITY = `${LIB}
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local old = redis.call('HGET', KEYS[1], 'priority') or 'normal'
unqueue(KEYS[1], KEYS[3], KEYS[4], ARGV[1])
redis.call('HDEL', KEYS[1], 'pass')
redis.call('HSET', KEYS[1], 'priority', ARGV[2])
queueIfReady(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[1])
return old
`;

/**
 * KEYS: batch hash, held zset, ready, urgent, clock. ARGV: batchId, gate JSON ('' opens the gate), gate state.
 * Closing a gate already closed for the same state keeps the earlier one. Returns { old gate JSON or '', held }, or
 * -1 for an unknown batch.
 */
const SET_GATE = `${LIB}
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local old = redis.call('HGET', KEYS[1], 'gate') or ''
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], 'gate')
  queueIfReady(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[1])
else
  local same = false
  if old ~= '' then
    local ok, parsed = pcall(cjson.decode, old)
    same = ok and type(parsed) == 'table' and parsed['state'] == ARGV[3]
  end
  if not same then redis.call('HSET', KEYS[1], 'gate', ARGV[2]) end
  unqueue(KEYS[1], KEYS[3], KEYS[4], ARGV[1])
end
return { old, redis.call('ZCARD', KEYS[2]) }
`;

/** Parses a stored gate; anything unreadable still counts as closed. */
export function parseGate(raw: string | null | undefined): BatchGate | null {
  if (raw === null || raw === undefined || raw === '') return null;
  try {
    const g = JSON.parse(raw) as Partial<BatchGate>;
    return { state: (g.state ?? 'paused'), reason: String(g.reason ?? ''), at: Number(g.at ?? 0) };
  } catch {
    return { state: 'paused', reason: raw, at: 0 };
  }
}

/**
 * Where held jobs go in their batch's order: `arrival` (new enqueues: last), `first` (images of the batch coming back
 * — an automatic resubmission, `upscale retry`: before every arrival, first come first served among themselves),
 * `rehold` (a job admitted then held again as its batch's gate closed: before everything). Jobs waiting out a retry
 * backoff are not held at all: BullMQ's delay puts them straight into the wait list when it runs out.
 */
export type HoldPlace = 'arrival' | 'first' | 'rehold';

/** A submit job to hold: BullMQ name, data and job id. */
export interface HeldJob<T> {
  name: string;
  data: T;
  opts: { jobId: string };
}

/** Thrown for a batch the scheduler does not know (no summary hash). */
export class UnknownBatchGateError extends Error {
  override readonly name = 'UnknownBatchGateError';
}

/**
 * The scheduler's operations over Redis: stateless, so any process (producer, worker, CLI, server) makes one
 * where it needs it. `submit` is the submit lane's BullMQ queue.
 */
export class FairShare {
  constructor(
    readonly redis: Redis,
    readonly keys: Keys,
    readonly submit: Queue,
    /** Held sets expire with the batch's records. */
    readonly retentionMs: number,
  ) {}

  private batchKeys(batchId: string): string[] {
    const k = this.keys;
    return [k.batch(batchId), k.held(batchId), k.schedReady, k.schedUrgent, k.schedClock];
  }

  /**
   * Adds submit jobs of one batch as held jobs (BullMQ ignores an id it already has) and indexes them for
   * admission. The jobs are added first: an index entry never points at a job that does not exist yet. Call
   * `admit` (or let a worker do it) afterwards. Resolves with the batch's held count.
   */
  async holdJobs<T>(batchId: string, jobs: readonly HeldJob<T>[], place: HoldPlace = 'arrival'): Promise<number> {
    if (jobs.length === 0) return this.index(batchId, [], place);
    await this.submit.addBulk(jobs.map((j) => ({ name: j.name, data: j.data, opts: { ...j.opts, delay: HOLD_MS } })));
    return this.index(
      batchId,
      jobs.map((j) => j.opts.jobId),
      place,
    );
  }

  /**
   * Indexes already-held job ids of a batch for admission at `place` in the batch's order, and queues the batch if
   * its gate is open. Resolves with the batch's held count.
   */
  async index(batchId: string, jobIds: readonly string[], place: HoldPlace): Promise<number> {
    const held = await runScript(this.redis, HOLD, this.batchKeys(batchId), [batchId, this.retentionMs, place, ...jobIds]);
    return Number(held);
  }

  /**
   * Holds again a submit job a worker has started while its batch's gate is closed: indexed first in its batch,
   * then moved back to the delayed set. Throw BullMQ's `DelayedError` after this resolves.
   */
  async rehold(job: Job, batchId: string, token: string | undefined): Promise<void> {
    if (job.id === undefined) throw new Error('rehold: the job has no id');
    await this.index(batchId, [job.id], 'rehold');
    await job.moveToDelayed(Date.now() + HOLD_MS, token);
  }

  /**
   * Picks up to `target` minus (waiting + being admitted) held jobs in fair order and promotes them into the wait
   * list. Resolves with the ids promoted (a job that left
   * the held state meanwhile, e.g. cancelled, is skipped).
   */
  async admit(target: number, now = Date.now()): Promise<string[]> {
    const k = this.keys;
    const ids = (await runScript(
      this.redis,
      ADMIT,
      [k.schedReady, k.schedUrgent, k.schedClock, k.schedAdmitting, this.submit.toKey('wait'), this.submit.toKey('delayed')],
      [`${k.batch('')}`, target, now, heldScoreFloor(now), now - STALE_ADMIT_MS, SWEEP_LIMIT],
    )) as string[];
    if (ids.length === 0) return [];
    const promoted = await Promise.all(
      ids.map((id) =>
        new Job(this.submit, 'submit', null, {}, id).promote().then(
          () => id,
          () => null, // no longer delayed (admitted by another process, removed by cancel): nothing to do
        ),
      ),
    );
    await this.redis.zrem(k.schedAdmitting, ...ids);
    return promoted.filter((id): id is string => id !== null);
  }

  /** Sets a batch's priority (its place among the others restarts at the scheduler's clock). Resolves with the old one. */
  async setPriority(batchId: string, priority: Priority): Promise<Priority> {
    const old = await runScript(this.redis, SET_PRIORITY, this.batchKeys(batchId), [batchId, priority]);
    if (old === -1) throw new UnknownBatchGateError(`no batch named ${batchId}`);
    return isPriority(String(old)) ? (old as Priority) : DEFAULT_PRIORITY;
  }

  /**
   * Closes (`gate`) or opens (`null`) a batch's gate. Closing it again for the same state keeps the first gate
   * (and its time). Resolves with the gate before and the batch's held count.
   */
  async setGate(batchId: string, gate: BatchGate | null): Promise<{ before: BatchGate | null; held: number }> {
    const r = await runScript(this.redis, SET_GATE, this.batchKeys(batchId), [batchId, gate ? JSON.stringify(gate) : '', gate?.state ?? '']);
    if (r === -1) throw new UnknownBatchGateError(`no batch named ${batchId}`);
    const [old, held] = r as [string, number];
    return { before: parseGate(old), held: Number(held) };
  }

  /** The batch's gate, or null when it is open. One HGET. */
  async gateOf(batchId: string): Promise<BatchGate | null> {
    return parseGate(await this.redis.hget(this.keys.batch(batchId), 'gate'));
  }

  /** Held (not yet admitted) jobs of a batch. */
  async heldCount(batchId: string): Promise<number> {
    return this.redis.zcard(this.keys.held(batchId));
  }

  /**
   * What competes for the create budget now: every batch with held jobs and an open gate (the ready and urgent
   * sets), with its held count and priority. One pipeline of O(B) commands for B such batches.
   */
  async backlog(): Promise<{ batchId: string; held: number; priority: Priority }[]> {
    const k = this.keys;
    const [ready, urgent] = await Promise.all([this.redis.zrange(k.schedReady, '0', '-1'), this.redis.zrange(k.schedUrgent, '0', '-1')]);
    const ids = [...new Set([...urgent, ...ready])];
    if (ids.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.zcard(k.held(id)).hget(k.batch(id), 'priority');
    const replies = (await pipe.exec()) ?? [];
    return ids.map((batchId, i) => {
      const held = Number(replies[2 * i]?.[1] ?? 0);
      const raw = replies[2 * i + 1]?.[1];
      const p = typeof raw === 'string' ? raw : DEFAULT_PRIORITY;
      return { batchId, held, priority: isPriority(p) ? p : DEFAULT_PRIORITY };
    });
  }

  /** Drops a batch's held index (its jobs are being cancelled); the batch leaves the ready sets at its next turn. */
  async dropHeld(batchId: string): Promise<void> {
    await this.redis.del(this.keys.held(batchId));
  }
}

/** The parts of a runtime the scheduler needs (a `Runtime` is one). */
export interface FairShareSource {
  readonly redis: Redis;
  readonly queues: { readonly submit: Queue };
  readonly store: { readonly keys: Keys; readonly retentionMs: number };
}

/** The scheduler over a runtime's Redis and submit queue. */
export function fairShareOf(rt: FairShareSource): FairShare {
  return new FairShare(rt.redis, rt.store.keys, rt.queues.submit, rt.store.retentionMs);
}
