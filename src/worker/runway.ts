/**
 * The credit runway: submission stops before kie.ai would answer 402, and people hear about it before then.
 *
 * - The balance (kie.ai's `GET /api/v1/chat/credit`) is read at most once per CREDITS_CHECK_INTERVAL for all
 *   processes together: the reader takes a Redis lock for the interval (SET NX PX) and stores what it read
 *   (`keys.creditBalance`, a hash: `balance`, `at`, `spent`).
 * - Each image about to be sent takes its estimated price off what is left (`spent`, atomically) and is in flight
 *   until createTask answers; when what is left is below the image's price, the submit lane pauses with reason
 *   `credits` and the image waits (nothing sent, no 402). A fresh read starts `spent` at what is still in flight
 *   (sent but maybe not yet in the balance), so a read in the middle of sends does not forget them.
 * - With each read the watch compares the balance with what the waiting images need (per batch: its measured
 *   credits per succeeded image, else the price table's typical case): below it, `credits.low` once per shortfall
 *   and the status line "credits for about N more images". A `credits` pause ends by itself once a read shows
 *   enough for the next image (or by `upscale resume`).
 */
import { Worker } from 'bullmq';
import { creditsLow, emitOnce, clearOccurrence } from '../notify/index.js';
import { pauseLane, getPauseReason } from '../queue/pause-reason.js';
import type { BatchSummary } from '../results/record.js';
import { runScript } from '../results/scripts.js';
import type { Runtime } from '../runtime.js';
import { priceOf } from './prices.js';

/**
 * KEYS: balance hash, in-flight hash. ARGV: price, jobId, now. Records the send as in flight (until createTask
 * answers) and takes its price off what is left. → { 'ok' | 'short' | 'unknown', left }
 */
const TAKE = `
local b = redis.call('HMGET', KEYS[1], 'balance', 'spent')
if b[1] then
  local left = tonumber(b[1]) - (tonumber(b[2]) or 0)
  if left < tonumber(ARGV[1]) then return { 'short', tostring(left) } end
  redis.call('HINCRBYFLOAT', KEYS[1], 'spent', ARGV[1])
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1] .. ':' .. ARGV[3])
if b[1] then return { 'ok', '' } end
return { 'unknown', '' }
`;

/**
 * KEYS: balance hash, in-flight hash. ARGV: balance, now, staleBefore. Stores a fresh read: what is spent since
 * is what is still in flight (sent, or about to be, and maybe not in the balance yet); in-flight entries older
 * than staleBefore (their worker died) are dropped.
 */
const STORE_READ = `
local inflight = redis.call('HGETALL', KEYS[2])
local spent = 0
for i = 1, #inflight, 2 do
  local price, at = string.match(inflight[i + 1], '([^:]+):(.+)')
  if tonumber(at) < tonumber(ARGV[3]) then redis.call('HDEL', KEYS[2], inflight[i]) else spent = spent + tonumber(price) end
end
redis.call('HSET', KEYS[1], 'balance', ARGV[1], 'at', ARGV[2], 'spent', tostring(spent))
return tostring(spent)
`;

export interface RunwayState {
  /** Credits kie.ai reported at `at`. */
  balance: number;
  at: number;
  /** Estimated credits sent since that read. */
  spent: number;
  /** What the waiting images need, about (null before the watch computed it). */
  needed: number | null;
  /** Images the balance covers at the waiting images' average price (null without waiting images). */
  imagesLeft: number | null;
}

export async function getRunway(rt: Runtime): Promise<RunwayState | null> {
  const h = await rt.redis.hgetall(rt.store.keys.creditBalance);
  if (h.balance === undefined) return null;
  const n = (v: string | undefined) => (v === undefined || v === '' ? null : Number(v));
  return { balance: Number(h.balance), at: Number(h.at), spent: Number(h.spent ?? 0), needed: n(h.needed), imagesLeft: n(h.imagesLeft) };
}

/** Reads the balance when no process did within CREDITS_CHECK_INTERVAL. Returns the balance read, or null. */
export async function refreshBalance(rt: Runtime, now = Date.now()): Promise<number | null> {
  const got = await rt.redis.set(rt.store.keys.creditReadLock, String(now), 'PX', rt.config.creditsCheckIntervalMs, 'NX');
  if (got !== 'OK') return null;
  let balance: number;
  try {
    balance = await rt.kie.getCredits();
  } catch (err) {
    rt.log.warn({ err }, 'could not read the credit balance; trying again after CREDITS_CHECK_INTERVAL');
    return null;
  }
  await runScript(rt.redis, STORE_READ, [rt.store.keys.creditBalance, inflightKey(rt)], [balance, now, now - 2 * rt.config.requestTimeoutMs]);
  return balance;
}

function inflightKey(rt: Runtime): string {
  return `${rt.store.keys.creditBalance}:inflight`;
}

/** For the submit lane, once createTask answered (or failed): that send is no longer in flight. */
export async function answeredForRunway(rt: Runtime, jobId: string): Promise<void> {
  await rt.redis.hdel(inflightKey(rt), jobId);
}

export type RunwayDecision = { ok: true } | { ok: false; left: number };

/** Takes `price` off what is left of the last read balance; `ok: false` when it does not cover it. Unknown balance: ok. */
export async function takeFromRunway(rt: Runtime, jobId: string, price: number, now = Date.now()): Promise<RunwayDecision> {
  const [status, left] = (await runScript(rt.redis, TAKE, [rt.store.keys.creditBalance, inflightKey(rt)], [price, jobId, now])) as [string, string];
  return status === 'short' ? { ok: false, left: Number(left) } : { ok: true };
}

/**
 * For the submit lane: pauses submission with reason `credits` (jobs stay waiting) and ends this job's run the way
 * a 402 would (BullMQ's RateLimitError: back to waiting, no attempt spent).
 */
export async function pauseForCredits(rt: Runtime, left: number, price: number): Promise<never> {
  const message = `about ${round(left)} credits left, below this image's ${round(price)}: submission paused before kie.ai would refuse it (402). Add credits; it resumes by itself within CREDITS_CHECK_INTERVAL, or run \`upscale resume\`.`;
  await pauseLane(rt.redis, rt.store.keys, rt.queues.submit, 'submit', { code: 'credits', message });
  rt.log.error({ lane: 'submit', left: round(left), price }, 'submission paused: credits would run out');
  throw Worker.RateLimitError();
}

const typicalPrice = new Map<string, number>();

/** Credits per image of a batch: measured when some succeeded, else the price table's typical case of a sample. */
async function pricePerImage(rt: Runtime, b: BatchSummary): Promise<number> {
  if (b.counts.succeeded > 0 && b.creditsConsumed > 0) return b.creditsConsumed / b.counts.succeeded;
  const cached = typicalPrice.get(b.batchId);
  if (cached !== undefined) return cached;
  let sum = 0;
  let n = 0;
  const [, flat] = await rt.redis.hscan(rt.store.keys.records(b.batchId), '0', 'COUNT', 20);
  for (let i = 1; i < flat.length && n < 20; i += 2) {
    const r = JSON.parse(flat[i] as string) as { model: Parameters<typeof priceOf>[1]; factor: Parameters<typeof priceOf>[2] };
    sum += priceOf(rt.config.priceTable, r.model, r.factor, null).credits;
    n++;
  }
  const price = n > 0 ? sum / n : rt.config.priceTable.topaz4K;
  typicalPrice.set(b.batchId, price);
  return price;
}

/** The watch's step: reads the balance (when due), compares it with the waiting images, notifies, lifts a `credits` pause. */
export async function watchRunway(rt: Runtime, open: readonly BatchSummary[], now: number): Promise<void> {
  const read = await refreshBalance(rt, now);
  if (read === null) return; // another process read it within the interval, or the read failed
  let needed = 0;
  let waiting = 0;
  let minPrice = Infinity;
  for (const b of open) {
    const count = b.counts.waiting + b.counts.held + b.counts.submitting;
    if (count === 0) continue;
    const price = await pricePerImage(rt, b);
    needed += count * price;
    waiting += count;
    minPrice = Math.min(minPrice, price);
  }
  const avg = waiting > 0 ? needed / waiting : null;
  const imagesLeft = avg ? Math.floor(read / avg) : null;
  await rt.redis.hset(rt.store.keys.creditBalance, { needed: String(round(needed)), imagesLeft: imagesLeft === null ? '' : String(imagesLeft) });
  const mark = rt.store.keys.notifyMark('credits-low');
  if (waiting > 0 && read < needed) {
    await emitOnce(rt, mark, creditsLow({ balance: read, needed, imagesLeft: imagesLeft ?? 0, nextPrice: round(minPrice), since: now }, now), { now });
  } else {
    await clearOccurrence(rt, mark);
  }
  const reason = await getPauseReason(rt.redis, rt.store.keys, 'submit');
  if (reason?.code === 'credits' && (await rt.queues.submit.isPaused()) && (waiting === 0 || read >= minPrice)) {
    await rt.redis.del(rt.store.keys.pauseReason('submit'));
    await rt.queues.submit.resume();
    rt.log.info({ balance: read }, 'credits available again: submission resumed');
  }
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}
