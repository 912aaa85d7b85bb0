/**
 * The submit lane's circuit breaker. kie.ai answers some refusals that will repeat for every image with codes that
 * look per-image (a `500 This field is required` for a request shape the account no longer accepts, a `422 The page
 * does not exist or is not published` for a model slug; kie-samples 09, 11, 12). Retrying or failing them one image
 * at a time would burn through a whole batch. So the breaker counts *consecutive* createTask failures of *different*
 * images that carry the same kie code and message; at `threshold` (SUBMIT_BREAKER, default 5) it trips: the lane
 * pauses (the caller does that) and the images of the run go back to waiting.
 *
 * State is one Redis hash shared by every worker: `_sig` = the run's `code msg`, one field per image of the run
 * (`batchId/jobId` → its generation). A different failure starts a new run; a success ends it (`reset`). An image
 * failing twice counts once. A trip leaves `_tripped` beside `_sig` until the caller has paused the lane
 * (`tripHandled`): a failure with the same signature answered in between (sent before the trip) joins the trip instead
 * of starting a new run and being recorded failed (seen under load: 5 of 6 images back to waiting, the 6th failed). Pure Redis (src/queue never calls HTTP).
 */
import type { Redis } from 'ioredis';
import type { Keys } from './names.js';

/** One image of a run: what is needed to send it back to waiting. */
export interface BreakerImage {
  batchId: string;
  jobId: string;
  generation: number;
}

export type BreakerVerdict =
  /**
   * `joinsTrip`: another image's failure with this signature just tripped the breaker, and its pause is not in place
   * yet (`tripHandled` not called): this image goes back to waiting with the run's.
   */
  | { tripped: false; run: number; joinsTrip?: true }
  /** `images`: every image of the run (the caller's own included), in no particular order. */
  | { tripped: true; run: number; signature: string; images: BreakerImage[] };

/**
 * KEYS: breaker hash. ARGV: signature, field, value, threshold, ttlMs, tripHoldMs. Returns { run }, { run, flat HGETALL }
 * on the trip, or { -1 } when the run with this signature tripped and its pause is not in place yet (`_tripped`).
 */
const REGISTER = `
local sig = redis.call('HGET', KEYS[1], '_sig')
if sig == ARGV[1] and redis.call('HEXISTS', KEYS[1], '_tripped') == 1 then return { -1 } end
if sig ~= ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], '_sig', ARGV[1])
end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
local run = redis.call('HLEN', KEYS[1]) - 1
if run >= tonumber(ARGV[4]) then
  local all = redis.call('HGETALL', KEYS[1])
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], '_sig', ARGV[1], '_tripped', '1')
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
  return { run, all }
end
return { run }
`;

/** KEYS: breaker hash. ARGV: signature. The trip's pause is in place: the next run counts from zero. */
const TRIP_HANDLED = `
if redis.call('HGET', KEYS[1], '_sig') == ARGV[1] then redis.call('HDEL', KEYS[1], '_tripped') end
return 0
`;

/** The signature of a failure: kie's code and message, as the pause reason shows them. */
export function breakerSignature(code: number | string, message: string): string {
  return `${code} ${message.trim()}`.slice(0, 300);
}

export class SubmitBreaker {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    /** Failures of different images in a row that trip it (SUBMIT_BREAKER); 0 disables the breaker. */
    private readonly threshold: number,
    /** How long a run is remembered without a new failure (ms). */
    private readonly memoryMs = 3_600_000,
    /** How long a trip holds later failures of its signature at most, if `tripHandled` never comes (a crash), ms. */
    private readonly tripHoldMs = 60_000,
  ) {}

  get enabled(): boolean {
    return this.threshold > 0;
  }

  /**
   * Counts a createTask failure of `image` with `signature`. `threshold` overrides the configured one (a probe that
   * meets the signature that tripped the breaker trips it again at once, with 1).
   */
  async failed(image: BreakerImage, signature: string, threshold = this.threshold): Promise<BreakerVerdict> {
    if (threshold <= 0) return { tripped: false, run: 0 };
    const field = `${image.batchId}/${image.jobId}`;
    const out = (await this.redis.eval(REGISTER, 1, this.keys.breaker, signature, field, String(image.generation), threshold, this.memoryMs, this.tripHoldMs)) as
      | [number]
      | [number, string[]];
    const run = out[0];
    if (run < 0) return { tripped: false, run: 0, joinsTrip: true };
    if (out.length === 1) return { tripped: false, run };
    const flat = out[1];
    const images: BreakerImage[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const key = flat[i] as string;
      if (key === '_sig') continue;
      const slash = key.indexOf('/');
      images.push({ batchId: key.slice(0, slash), jobId: key.slice(slash + 1), generation: Number(flat[i + 1]) });
    }
    return { tripped: true, run, signature, images };
  }

  /**
   * The trip of `signature` is handled (the lane's pause is in place, so later failures read it): the next failure
   * starts a new run. Until then (at most `tripHoldMs`), failures with that signature join the trip.
   */
  async tripHandled(signature: string): Promise<void> {
    if (this.threshold > 0) await this.redis.eval(TRIP_HANDLED, 1, this.keys.breaker, signature);
  }

  /** A createTask succeeded: the run is broken. */
  async reset(): Promise<void> {
    if (this.threshold > 0) await this.redis.del(this.keys.breaker);
  }
}
