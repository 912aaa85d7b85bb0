/**
 * The faults in force and the draws against them. Where each fault strikes (see `SimFaults`):
 * the HTML 502 page, maintenance (455) and the injected 500/501 come before anything else, so nothing is
 * created or counted; a slow answer waits before the call is processed; a malformed answer is cut after the
 * call was processed (a createTask may have created its task).
 */
import { checkFaults, type SimFaults } from './options.js';
import type { Rng } from './random.js';

export class FaultState {
  private current: SimFaults;
  private maintenanceUntil = 0;

  constructor(
    initial: SimFaults,
    private readonly rng: Rng,
  ) {
    this.current = { ...initial };
  }

  get faults(): Readonly<SimFaults> {
    return this.current;
  }

  /** Changes some faults; throws a RangeError naming a bad field (nothing changes then). */
  set(partial: Partial<SimFaults>): void {
    this.current = { ...this.current, ...checkFaults(partial) };
  }

  /** Answers 455 for `ms` (already scaled) from now, on top of the `maintenance` switch. */
  maintenanceFor(ms: number): void {
    this.maintenanceUntil = Math.max(this.maintenanceUntil, Date.now() + ms);
  }

  inMaintenance(): boolean {
    return this.current.maintenance || Date.now() < this.maintenanceUntil;
  }

  /** True with the share named by `which` (a zero rate never consumes a draw). */
  draw(
    which:
      | 'serverErrorRate'
      | 'generationErrorRate'
      | 'slowRate'
      | 'malformedRate'
      | 'htmlErrorRate'
      | 'truncatedResultRate'
      | 'gzipResultRate',
  ): boolean {
    return this.rng.chance(this.current[which]);
  }
}
