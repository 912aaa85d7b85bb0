import { describe, expect, it } from 'vitest';
import { shareOf } from '../../src/worker/poll-budget.js';
import { adviceDelay, ageAt, budgetedDelay, callbackFallbackDelay, cdfAt, quantiles } from '../../src/worker/poll-schedule.js';

describe('poll schedule', () => {
  const base = { minMs: 2000, maxMs: 30_000, remainingMs: 900_000, floorMs: 0, pressure: 0.3 };
  /** 200 completion times of a lognormal (median 20 s, p95 60 s) at evenly spaced quantiles. */
  const lognormal = (() => {
    const sigma = Math.log(3) / 1.6448536269514722;
    // inverse normal CDF by bisection on erf's complement (good enough for a test grid)
    const phi = (z: number) => 0.5 * (1 + Math.sign(z) * Math.sqrt(1 - Math.exp((-2 * z * z) / Math.PI)));
    const inv = (u: number) => {
      let lo = -8;
      let hi = 8;
      for (let i = 0; i < 80; i++) {
        const mid = (lo + hi) / 2;
        if (phi(mid) < u) lo = mid;
        else hi = mid;
      }
      return (lo + hi) / 2;
    };
    return Array.from({ length: 200 }, (_, k) => 20_000 * Math.exp(sigma * inv((k + 1) / 201)));
  })();

  it('follows kie.ai advice without samples (fewer than 8)', () => {
    expect(budgetedDelay({ ...base, elapsedMs: 0, sortedMs: [] })).toBe(3000);
    expect(budgetedDelay({ ...base, elapsedMs: 60_000, sortedMs: [1, 2, 3] })).toBe(8000);
    expect(budgetedDelay({ ...base, elapsedMs: 200_000, sortedMs: [] })).toBe(20_000);
    expect(adviceDelay(29_999)).toBe(3000);
    // scaled with the intervals (a ×10 simulation: 200 ms and 3 s)
    expect([adviceDelay(0, 200, 3000), adviceDelay(5000, 200, 3000), adviceDelay(20_000, 200, 3000)]).toEqual([300, 800, 2000]);
  });

  it('the empirical CDF and its inverse agree, through (0, 0) and each sample', () => {
    const sorted = [1000, 2000, 4000, 8000];
    expect(cdfAt(sorted, 0)).toBe(0);
    expect(cdfAt(sorted, 1000)).toBeCloseTo(1 / 5);
    expect(cdfAt(sorted, 3000)).toBeCloseTo(2.5 / 5);
    expect(cdfAt(sorted, 9000)).toBeCloseTo(4 / 5);
    for (const x of [10, 500, 1000, 1500, 3999, 7000]) expect(ageAt(sorted, cdfAt(sorted, x))).toBeCloseTo(x, 6);
  });

  it('checks again when the chance of having finished since the last check reaches the pressure', () => {
    const opts = { ...base, minMs: 1, sortedMs: lognormal };
    for (const elapsedMs of [0, 10_000, 20_000, 35_000]) {
      const delay = budgetedDelay({ ...opts, elapsedMs });
      const f0 = cdfAt(lognormal, elapsedMs);
      const chance = (cdfAt(lognormal, elapsedMs + delay) - f0) / (1 - f0);
      expect(chance).toBeCloseTo(0.3, 2);
    }
    // The task near its model's median is checked sooner than a young one (it is likelier to have finished).
    expect(budgetedDelay({ ...opts, elapsedMs: 20_000 })).toBeLessThan(budgetedDelay({ ...opts, elapsedMs: 0 }));
    // Lower pressure, more frequent checks.
    expect(budgetedDelay({ ...opts, elapsedMs: 20_000, pressure: 0.05 })).toBeLessThan(budgetedDelay({ ...opts, elapsedMs: 20_000 }));
  });

  it('a task costs 1/p checks on average (each check finds it done with chance p), whatever the distribution', () => {
    for (const pressure of [0.1, 0.3, 0.6]) {
      let checks = 0;
      for (const life of lognormal) {
        let age = 0;
        for (;;) {
          age += budgetedDelay({ ...base, minMs: 1, maxMs: 1e9, sortedMs: lognormal, pressure, elapsedMs: age });
          checks++;
          if (age >= life) break;
        }
      }
      const expected = 1 / pressure;
      expect(checks / lognormal.length).toBeGreaterThan(expected * 0.9);
      expect(checks / lognormal.length).toBeLessThan(expected * 1.1);
    }
  });

  it('a task past every sample is checked at −ln(1 − p) × its age (half its age at p = 0.39, the minimum interval when the budget is idle); bounds, floor and deadline hold', () => {
    const sorted = Array.from({ length: 10 }, (_, i) => (i + 1) * 1000);
    expect(budgetedDelay({ ...base, minMs: 1, sortedMs: sorted, elapsedMs: 40_000, pressure: 1 - Math.exp(-0.5) })).toBe(20_000);
    expect(budgetedDelay({ ...base, minMs: 1, sortedMs: sorted, elapsedMs: 40_000, pressure: 0.3 })).toBe(Math.round(-40_000 * Math.log(0.7)));
    // The budget idle (the pressure at its floor, 0.02): the run's slowest tasks are checked every POLL_MIN_INTERVAL,
    // not every POLL_MAX_INTERVAL (they were: half their age, capped at 30 s).
    expect(budgetedDelay({ ...base, sortedMs: sorted, elapsedMs: 90_000, pressure: 0.02 })).toBe(2000);
    expect(budgetedDelay({ ...base, sortedMs: sorted, elapsedMs: 200_000 })).toBe(30_000);
    expect(budgetedDelay({ ...base, sortedMs: [100, 200, 300, 400, 500, 600, 700, 800], elapsedMs: 0 })).toBe(2000);
    // 10,000 tasks at 8 per second: round-robin spacing, above POLL_MAX_INTERVAL
    expect(budgetedDelay({ ...base, sortedMs: lognormal, elapsedMs: 20_000, floorMs: 1_250_000 })).toBe(900_000);
    expect(budgetedDelay({ ...base, sortedMs: lognormal, elapsedMs: 20_000, floorMs: 1_250_000, remainingMs: 2_000_000 })).toBe(1_250_000);
    expect(budgetedDelay({ ...base, remainingMs: 700, elapsedMs: 0, sortedMs: [] })).toBe(700);
    expect(budgetedDelay({ ...base, remainingMs: 0, elapsedMs: 0, sortedMs: [] })).toBe(1);
  });

  it('polling\'s share of the query budget keeps the rate exactly, as whole calls per window', () => {
    expect(shareOf({ max: 10, durationMs: 1000 }, 0.8)).toEqual({ max: 8, durationMs: 1000 });
    const odd = shareOf({ max: 10, durationMs: 1000 }, 0.75);
    expect(odd.max).toBe(7);
    expect(odd.max / odd.durationMs).toBeCloseTo(7.5 / 1000, 12);
    expect(shareOf({ max: 1, durationMs: 1000 }, 0.5)).toEqual({ max: 1, durationMs: 2000 });
    expect(shareOf({ max: 10, durationMs: 1000 }, 1)).toEqual({ max: 10, durationMs: 1000 });
    expect(() => shareOf({ max: 10, durationMs: 1000 }, 0)).toThrow(RangeError);
  });

  it('with callbacks, falls back to a check just past the slowest quantile, then every interval, within the deadline', () => {
    const qs = [20_000, 30_000, 45_000, 60_000, 100_000];
    expect(callbackFallbackDelay({ elapsedMs: 0, remainingMs: 900_000, quantilesMs: qs, intervalMs: 30_000 })).toBe(105_000);
    expect(callbackFallbackDelay({ elapsedMs: 105_000, remainingMs: 900_000, quantilesMs: qs, intervalMs: 30_000 })).toBe(30_000);
    expect(callbackFallbackDelay({ elapsedMs: 0, remainingMs: 900_000, quantilesMs: null, intervalMs: 30_000 })).toBe(30_000);
    expect(callbackFallbackDelay({ elapsedMs: 0, remainingMs: 5_000, quantilesMs: qs, intervalMs: 30_000 })).toBe(5_000);
  });

  it('computes quantiles of a sorted sample', () => {
    const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(quantiles(sorted, [0.5, 0.9])).toEqual([51, 91]);
    expect(quantiles([], [0.5])).toEqual([]);
  });
});
