/**
 * Seeded randomness for the simulator: one small PRNG (mulberry32) per concern ("latency", "fail", "faults",
 * "callbacks", "ids"), so changing one fault rate does not shift the latency draws of a seeded run.
 */

/** A deterministic source of numbers in [0, 1). */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** mulberry32: 32-bit state, good enough for simulation, not for secrets. */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** True with probability `p` (0 never draws, so a zero rate leaves the stream untouched). */
  chance(p: number): boolean {
    if (p <= 0) return false;
    if (p >= 1) return true;
    return this.next() < p;
  }

  /** A standard normal deviate (Box–Muller). */
  normal(): number {
    const u = Math.max(this.next(), Number.EPSILON);
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** `bytes` random bytes as lowercase hex. */
  hex(bytes: number): string {
    let out = '';
    for (let i = 0; i < bytes; i++)
      out += Math.floor(this.next() * 256)
        .toString(16)
        .padStart(2, '0');
    return out;
  }

  /** Picks a key of `weights` with probability proportional to its weight. */
  weighted(weights: Readonly<Record<string, number>>): string {
    const entries = Object.entries(weights).filter(([, w]) => w > 0);
    const total = entries.reduce((s, [, w]) => s + w, 0);
    let r = this.next() * total;
    for (const [key, w] of entries) {
      r -= w;
      if (r < 0) return key;
    }
    return entries[entries.length - 1]?.[0] ?? '500';
  }
}

/** FNV-1a 32-bit hash of a string. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A PRNG for one concern, derived from the run's seed and the concern's name. */
export function streamRng(seed: number, name: string): Rng {
  return new Rng((seed ^ hash32(name)) >>> 0);
}

/**
 * A PRNG for one concern of one keyed thing, independent of every other draw of the run: seeded by the run's seed
 * and an FNV-1a hash of the concern and the key's parts (joined with NUL, so `["a", "bc"]` and `["ab", "c"]` differ).
 * `SimOptions.latencyByInput` uses it so a task's latency and outcome depend on what it is, not on when it was
 * created. Two different keys share a seed only on a 32-bit hash collision (about 1 in 4·10⁹ per pair).
 */
export function keyedRng(seed: number, concern: string, parts: readonly string[]): Rng {
  return new Rng((seed ^ hash32(`${concern}\u0000${parts.join('\u0000')}`)) >>> 0);
}

const Z95 = 1.6448536269514722;

/**
 * A lognormal draw with the given median and 95th percentile (both > 0, p95 ≥ median):
 * μ = ln(median), σ = (ln(p95) − ln(median)) / z₀.₉₅.
 */
export function lognormal(rng: Rng, medianMs: number, p95Ms: number): number {
  const mu = Math.log(medianMs);
  const sigma = Math.max(0, Math.log(Math.max(p95Ms, medianMs)) - mu) / Z95;
  return Math.exp(mu + sigma * rng.normal());
}
