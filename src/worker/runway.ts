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
 * - An image not sent after all (it failed its preparation, the batch was paused, the worker is draining) gives its
 *   price back at once (`releaseRunway`).
 * - With each read the watch compares the balance with what the waiting images need (per batch: its measured
 *   credits per succeeded image, else the price table's typical case): below it, `credits.low` once per shortfall
 *   and the status line "credits for about N more images".
 *
 * **Hysteresis.** A `credits` pause starts when what is left is below the next image's price P, and ends by itself
 * only when a read shows, after the reservations still in flight, at least `P × (1 + KIE_CREATE_LIMIT's count)`
 * (the next image and one full window of the create budget: 210 credits at 10 per image and 20 per 10 s), or enough
 * for every image still waiting, whichever is less (or by `upscale resume`). Without it a read showing a little more
 * than P resumed the lane, the next sends took it, and the lane paused again at once: with two workers and reads
 * every 5 s it flapped 3 times in 8 s (trial of issues 10/14, item G). The pause is logged once (error); the other
 * images that meet it while it lasts are logged at debug, and do not move its start (`at`), so `batch.paused` is
 * sent once per pause.
 */
import { Worker } from 'bullmq';
import { creditsLow, emitOnce, clearOccurrence } from '../notify/index.js';
import { parsePauseReason, swapPauseReason, type PauseReason } from '../queue/pause-reason.js';
import { parseRecord, type BatchSummary } from '../results/record.js';
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
  /** What the waiting images need, about, as of `at` (null before the watch computed it). */
  needed: number | null;
  /** The images `needed` is for: waiting, held and submitting ones at `at` (null before the watch counted them). */
  waitingImages: number | null;
  /** Images the balance covers at the waiting images' average price (null without waiting images). */
  imagesLeft: number | null;
}

export async function getRunway(rt: Runtime): Promise<RunwayState | null> {
  const h = await rt.redis.hgetall(rt.store.keys.creditBalance);
  if (h.balance === undefined) return null;
  const n = (v: string | undefined) => (v === undefined || v === '' ? null : Number(v));
  return { balance: Number(h.balance), at: Number(h.at), spent: Number(h.spent ?? 0), needed: n(h.needed), waitingImages: n(h.waitingImages), imagesLeft: n(h.imagesLeft) };
}

/**
 * Reads the balance when no process did within CREDITS_CHECK_INTERVAL. Returns the balance read and the credits of
 * the sends in flight at that moment (counted as spent since), or null.
 */
export async function readBalance(rt: Runtime, now = Date.now()): Promise<{ balance: number; inFlight: number } | null> {
  const got = await rt.redis.set(rt.store.keys.creditReadLock, String(now), 'PX', rt.config.creditsCheckIntervalMs, 'NX');
  if (got !== 'OK') return null;
  let balance: number;
  try {
    balance = await rt.kie.getCredits();
  } catch (err) {
    rt.log.warn({ err }, 'could not read the credit balance; trying again after CREDITS_CHECK_INTERVAL');
    return null;
  }
  const inFlight = Number(await runScript(rt.redis, STORE_READ, [rt.store.keys.creditBalance, inflightKey(rt)], [balance, now, now - 2 * rt.config.requestTimeoutMs]));
  return { balance, inFlight };
}

/** Reads the balance when no process did within CREDITS_CHECK_INTERVAL. Returns the balance read, or null. */
export async function refreshBalance(rt: Runtime, now = Date.now()): Promise<number | null> {
  return (await readBalance(rt, now))?.balance ?? null;
}

function inflightKey(rt: Runtime): string {
  return `${rt.store.keys.creditBalance}:inflight`;
}

/**
 * KEYS: balance hash, in-flight hash. ARGV: jobId. Drops the send's reservation and gives its price back to what is
 * left (when a balance is known: a fresh read counted it in `spent`, and so did the take). → 1, or 0 when none.
 */
const RELEASE = `
local v = redis.call('HGET', KEYS[2], ARGV[1])
if not v then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
local price = tonumber(string.match(v, '([^:]+):'))
local spent = tonumber(redis.call('HGET', KEYS[1], 'spent') or '')
if price and spent then redis.call('HSET', KEYS[1], 'spent', tostring(math.max(0, spent - price))) end
return 1
`;

/** Pause reasons about credits: the runway's own (`credits`) and kie.ai's refusal (402). */
export const CREDIT_PAUSES: readonly string[] = ['credits', '402'];

/**
 * For `upscale resume` of a credit pause (CREDIT_PAUSES): sets the last balance read aside, so the runway does not
 * pause again at once on the very figure the operator acted on (credits added since, or "spend what is left"). Until
 * the next read (CREDITS_CHECK_INTERVAL after the last one) images are sent as with no read yet; kie.ai's 402
 * stops them if the credits really ran out, and a read that still shows the shortfall pauses the lane again. The
 * sends in flight stay counted (the next read starts from them).
 */
export async function setBalanceAside(rt: Runtime): Promise<void> {
  await rt.redis.hdel(rt.store.keys.creditBalance, 'balance', 'at', 'spent');
}

/** For the submit lane: this image's reservation was not sent after all (see the module comment); a no-op without one. */
export async function releaseRunway(rt: Runtime, jobId: string): Promise<void> {
  await runScript(rt.redis, RELEASE, [rt.store.keys.creditBalance, inflightKey(rt)], [jobId]);
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

/** The credits a read must show free (after in-flight reservations) to lift a `credits` pause met at `price`. */
export function resumeThreshold(price: number, createLimit: { max: number }): number {
  return round(price * (1 + createLimit.max));
}

/**
 * For the submit lane: pauses submission with reason `credits` (jobs stay waiting) and ends this job's run the way
 * a 402 would (BullMQ's RateLimitError: back to waiting, no attempt spent). Only the first image to meet the
 * shortfall pauses and logs (error); while the `credits` pause lasts, the others keep it as it is (its start, its
 * threshold) and log at debug.
 */
export async function pauseForCredits(rt: Runtime, left: number, price: number): Promise<never> {
  const keys = rt.store.keys;
  const current = await rt.redis.get(keys.pauseReason('submit'));
  const existing = current ? parsePauseReason(current) : null;
  const resumeAt = resumeThreshold(price, rt.config.createLimit);
  const reason: PauseReason = {
    code: 'credits',
    message:
      `about ${round(left)} credits left, below this image's ${round(price)}: submission paused before kie.ai would refuse it (402). ` +
      `It resumes by itself once a balance read (every CREDITS_CHECK_INTERVAL) shows ${resumeAt} credits free beyond the sends in flight, or enough for every waiting image; add credits, or run \`upscale resume\` to spend what is left.`,
    at: Date.now(),
    resumeAbove: resumeAt,
  };
  const first = existing?.code !== 'credits' && (await swapPauseReason(rt.redis, keys, 'submit', current, reason));
  await rt.queues.submit.pause();
  if (first) rt.log.error({ lane: 'submit', left: round(left), price, resumeAbove: resumeAt }, 'submission paused: credits would run out');
  else rt.log.debug({ lane: 'submit', left: round(left), price }, 'credits pause already in force; image waits');
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
    const r = parseRecord(flat[i] as string, flat[i - 1] as string, b.batchId);
    sum += priceOf(rt.config.priceTable, r.model, r.factor, null).credits;
    n++;
  }
  const price = n > 0 ? sum / n : rt.config.priceTable.topaz4K;
  typicalPrice.set(b.batchId, price);
  return price;
}

/** The watch's step: reads the balance (when due), compares it with the waiting images, notifies, lifts a `credits` pause. */
export async function watchRunway(rt: Runtime, open: readonly BatchSummary[], now: number): Promise<void> {
  const fresh = await readBalance(rt, now);
  if (fresh === null) return; // another process read it within the interval, or the read failed
  const { balance: read, inFlight } = fresh;
  let needed = 0;
  let waiting = 0;
  let unsentNeed = 0;
  let minPrice = Infinity;
  for (const b of open) {
    const count = b.counts.waiting + b.counts.held + b.counts.submitting;
    if (count === 0) continue;
    const price = await pricePerImage(rt, b);
    needed += count * price;
    // Images that may be sent now and hold no reservation yet (held ones wait for a pilot's approval).
    unsentNeed += b.counts.waiting * price;
    waiting += count;
    minPrice = Math.min(minPrice, price);
  }
  const avg = waiting > 0 ? needed / waiting : null;
  const imagesLeft = avg ? Math.floor(read / avg) : null;
  await rt.redis.hset(rt.store.keys.creditBalance, { needed: String(round(needed)), waitingImages: String(waiting), imagesLeft: imagesLeft === null ? '' : String(imagesLeft) });
  const mark = rt.store.keys.notifyMark('credits-low');
  if (waiting > 0 && read < needed) {
    await emitOnce(rt, mark, creditsLow({ balance: read, needed, imagesLeft: imagesLeft ?? 0, nextPrice: round(minPrice), since: now }, now), { now });
  } else {
    await clearOccurrence(rt, mark);
  }
  const raw = await rt.redis.get(rt.store.keys.pauseReason('submit'));
  const reason = raw ? parsePauseReason(raw) : null;
  if (reason?.code !== 'credits' || !(await rt.queues.submit.isPaused())) return;
  // Hysteresis (module comment): what is free after the reservations in flight must cover the next image and one
  // window of the create budget, or every waiting image.
  const free = read - inFlight;
  const threshold = reason.resumeAbove ?? resumeThreshold(Number.isFinite(minPrice) ? minPrice : 0, rt.config.createLimit);
  if (unsentNeed > 0 && free < Math.min(threshold, unsentNeed)) {
    rt.log.debug({ balance: read, inFlight, free, threshold, needed: round(unsentNeed) }, 'credits pause stays: not enough free yet');
    return;
  }
  // Only the reason read above is lifted (another process may have changed it meanwhile).
  if (!(await swapPauseReason(rt.redis, rt.store.keys, 'submit', raw, null))) return;
  await rt.queues.submit.resume();
  rt.log.info({ balance: read, inFlight, free, threshold }, 'credits available again: submission resumed');
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}
