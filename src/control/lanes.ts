/**
 * Operator controls over the lanes (`upscale pause|resume`).
 *
 * - Pausing a lane is BullMQ's global `queue.pause()`: no worker starts a new job of that lane; running jobs finish
 *   and waiting jobs stay waiting. A running submit job that has not sent its createTask yet goes back to waiting at
 *   its last look before sending (src/worker/send-claim.ts, src/worker/probe-gate.ts `mayPassPause`). Pausing
 *   `submit` stops spending; `poll` keeps following the tasks already paid for.
 * - Why a lane is paused is kept beside the queue (`keys.pauseReason(lane)`, JSON `{ code, message, at, probe? }`), set
 *   by the lanes on 401/402/433 and the submit breaker (with a probe: they lift themselves, src/worker/lane-probe.ts)
 *   and by `pause()` here (`code: 'manual'`, no probe: only `resume()` lifts it). `resume()` deletes any reason.
 */
import { LANES, type Lane } from '../queue/names.js';
import { getPauseReason, type PauseReason } from '../queue/pause-reason.js';
import type { Runtime } from '../runtime.js';
import { CREDIT_PAUSES, setBalanceAside } from '../worker/runway.js';

function getReason(rt: Runtime, lane: Lane): Promise<PauseReason | null> {
  return getPauseReason(rt.redis, rt.store.keys, lane);
}

export interface PauseResult {
  lane: Lane;
  /** The lane was already paused; its earlier reason (a 401/402, or an earlier manual pause) is kept. */
  alreadyPaused: boolean;
  reason: PauseReason;
}

/**
 * Pauses lanes (default: only `submit`) and records `{ code: 'manual' }` as the reason, unless already paused by hand.
 * A pause that would lift itself (a probe after 401/402/433/breaker) becomes manual: the operator decides now.
 */
export async function pause(rt: Runtime, options: { lanes?: readonly Lane[]; now?: number } = {}): Promise<PauseResult[]> {
  const out: PauseResult[] = [];
  for (const lane of options.lanes ?? ['submit']) {
    const queue = rt.queues[lane];
    const alreadyPaused = await queue.isPaused();
    const found = await getReason(rt, lane);
    const existing = alreadyPaused && found && !found.probe ? found : null;
    const reason = existing ?? { code: 'manual', message: found?.probe ? `paused by upscale pause (was ${found.code}: ${found.message})` : 'paused by upscale pause', at: options.now ?? Date.now() };
    if (!existing) await rt.redis.set(rt.store.keys.pauseReason(lane), JSON.stringify(reason));
    if (!alreadyPaused) await queue.pause();
    out.push({ lane, alreadyPaused: alreadyPaused && existing !== null, reason });
  }
  return out;
}

export interface ResumeResult {
  /**
   * Lanes that were paused, with why (null when no reason was recorded); `balanceSetAside` when the submit lane was
   * paused for credits and the last balance read was set aside (src/worker/runway.ts `setBalanceAside`).
   */
  resumed: { lane: Lane; reason: PauseReason | null; balanceSetAside?: true }[];
  /** Lanes that were not paused (a stale reason is deleted anyway). */
  notPaused: Lane[];
}

/**
 * Resumes the paused ones of `lanes` (default: every lane) and deletes their pause reasons. A submit lane paused for
 * credits (the runway's `credits`, kie.ai's 402) also has its last balance read set aside: resuming is the
 * operator's word that credits were added or that what is left may be spent, and the stale read would pause it
 * again at the next image.
 */
export async function resume(rt: Runtime, options: { lanes?: readonly Lane[] } = {}): Promise<ResumeResult> {
  const result: ResumeResult = { resumed: [], notPaused: [] };
  for (const lane of options.lanes ?? LANES) {
    const queue = rt.queues[lane];
    const reason = await getReason(rt, lane);
    if (await queue.isPaused()) {
      const forCredits = lane === 'submit' && reason !== null && CREDIT_PAUSES.includes(reason.code);
      if (forCredits) await setBalanceAside(rt);
      await queue.resume();
      result.resumed.push({ lane, reason, ...(forCredits ? { balanceSetAside: true as const } : {}) });
    } else {
      result.notPaused.push(lane);
    }
    await rt.redis.del(rt.store.keys.pauseReason(lane), rt.store.keys.probeToken(lane));
  }
  return result;
}
