/**
 * A batch's credit budget (`upscale enqueue --max-credits N`). The budget is a field of the batch summary hash
 * (`maxCredits`, beside `creditsReserved`); each image reserves its estimated price once, atomically in Redis,
 * before its first createTask, so any number of workers together never reserve past the budget. An image keeps
 * its reservation across resubmissions (a failed task costs nothing, so the retry is paid by the same
 * reservation). The check counts the larger of what is reserved and what kie.ai reports consumed, so estimates
 * that turn out low stop submission early rather than late. Reservations are not given back (a task that failed
 * for good cost nothing, but the budget stays spent: conservative). Raising the budget (`setBatchBudget`, or
 * `upscale enqueue --batch ID --max-credits N` again) lets the images still waiting through; images already
 * cancelled by the budget stay cancelled (enqueue them into a new batch).
 */
import type { Runtime } from '../runtime.js';
import { runScript } from '../results/scripts.js';

/** KEYS: summary, reservations. ARGV: jobId, price, retentionMs. Returns { allowed (1/0), reserved, max } as strings. */
const RESERVE = `
local max = redis.call('HGET', KEYS[1], 'maxCredits')
if not max then return { '1', '0', '' } end
local reserved = tonumber(redis.call('HGET', KEYS[1], 'creditsReserved') or '0')
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return { '1', tostring(reserved), max } end
local consumed = tonumber(redis.call('HGET', KEYS[1], 'creditsConsumed') or '0')
local price = tonumber(ARGV[2])
local used = math.max(reserved, consumed)
if used + price > tonumber(max) + 1e-9 then return { '0', tostring(used), max } end
redis.call('HINCRBYFLOAT', KEYS[1], 'creditsReserved', price)
redis.call('HSET', KEYS[2], ARGV[1], price)
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return { '1', tostring(reserved + price), max }
`;

function reservationsKey(rt: Runtime, batchId: string): string {
  return `${rt.store.keys.batch(batchId)}:reservations`;
}

/** Sets (or changes) a batch's budget in credits. Call it before the batch's first job is added. */
export async function setBatchBudget(rt: Runtime, batchId: string, maxCredits: number): Promise<void> {
  if (!Number.isFinite(maxCredits) || maxCredits < 0) throw new RangeError(`a credit budget must be a number ≥ 0 (got ${maxCredits})`);
  const key = rt.store.keys.batch(batchId);
  await rt.redis.multi().hset(key, 'maxCredits', String(maxCredits)).pexpire(key, rt.store.retentionMs).exec();
}

export interface BudgetState {
  maxCredits: number;
  /** Credits reserved by the images submitted so far. */
  reserved: number;
}

/** The batch's budget, or null when it has none. */
export async function getBatchBudget(rt: Runtime, batchId: string): Promise<BudgetState | null> {
  const [max, reserved] = await rt.redis.hmget(rt.store.keys.batch(batchId), 'maxCredits', 'creditsReserved');
  if (max === null || max === undefined) return null;
  return { maxCredits: Number(max), reserved: Number(reserved ?? 0) };
}

export type Reservation =
  | { ok: true; budgeted: boolean }
  | { ok: false; reason: string; maxCredits: number };

/** Reserves `price` credits for image `jobId` of the batch (idempotent per image). Always ok without a budget. */
export async function reserveCredits(rt: Runtime, batchId: string, jobId: string, price: number): Promise<Reservation> {
  const [allowed, used, max] = (await runScript(
    rt.redis,
    RESERVE,
    [rt.store.keys.batch(batchId), reservationsKey(rt, batchId)],
    [jobId, price, rt.store.retentionMs],
  )) as [string, string, string];
  if (allowed === '1') return { ok: true, budgeted: max !== '' };
  const n = (v: string) => Math.round(Number(v) * 1000) / 1000;
  return {
    ok: false,
    maxCredits: n(max),
    reason: `credit budget of ${n(max)} reached: ${n(used)} reserved or consumed, this image needs about ${n(String(price))}`,
  };
}
