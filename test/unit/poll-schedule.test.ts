import { describe, expect, it } from 'vitest';
import { adviceDelay, callbackFallbackDelay, nextCheckDelay, quantiles } from '../../src/worker/poll-schedule.js';

describe('poll schedule', () => {
  const base = { minMs: 2000, maxMs: 30_000, remainingMs: 900_000 };
  it('follows kie.ai advice without samples', () => {
    expect(nextCheckDelay({ ...base, elapsedMs: 0, quantilesMs: null })).toBe(3000);
    expect(nextCheckDelay({ ...base, elapsedMs: 60_000, quantilesMs: null })).toBe(8000);
    expect(nextCheckDelay({ ...base, elapsedMs: 200_000, quantilesMs: null })).toBe(20_000);
    expect(adviceDelay(29_999)).toBe(3000);
  });

  it('aims just past the next quantile the task has not outlived', () => {
    const qs = [20_000, 30_000, 45_000, 60_000, 90_000];
    expect(nextCheckDelay({ ...base, elapsedMs: 0, quantilesMs: qs })).toBe(21_000);
    expect(nextCheckDelay({ ...base, elapsedMs: 21_000, quantilesMs: qs })).toBe(30_000 * 1.05 - 21_000);
    // past every quantile: back off by half the elapsed time, capped
    expect(nextCheckDelay({ ...base, elapsedMs: 100_000, quantilesMs: qs })).toBe(30_000);
  });

  it('clamps to the minimum, never passes the deadline, and is at least 1 ms', () => {
    expect(nextCheckDelay({ ...base, elapsedMs: 0, quantilesMs: [100, 200, 300, 400, 500] })).toBe(2000);
    expect(nextCheckDelay({ ...base, remainingMs: 700, elapsedMs: 0, quantilesMs: null })).toBe(700);
    expect(nextCheckDelay({ ...base, remainingMs: 0, elapsedMs: 0, quantilesMs: null })).toBe(1);
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
