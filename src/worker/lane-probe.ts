/**
 * Pauses that lift themselves. A refusal that will repeat for every image (401, 402, 433, a tripped breaker) pauses
 * submission with a reason carrying a probe (src/queue/pause-reason.ts). Every worker process runs a `LaneProber`
 * that, once the probe is due, checks on its own whether the cause has cleared:
 *
 * - **401** (`kind: key`): one credit-balance call, which is free; when it answers, the lane resumes.
 * - **storage** (`kind: store`, the download lane): the output store refused the credentials, is unreachable, answers
 *   5xx or throttles. One write-read of a probe object (src/storage `probeStorage`); when it works, the lane resumes.
 *   Probes come 10 s, 20 s, 40 s... after the pause, at most PROBE_COOLDOWN apart: an outage of a minute costs a
 *   minute, not the cooldown.
 * - **402, 433, breaker** (`kind: image`): the reason is marked `running` and the queue resumed; the probe gate
 *   (probe-gate.ts) lets exactly one image send. Its success lifts the pause; the same refusal pauses the lane again
 *   with the next probe time; anything else hands the probe to the next image.
 *
 * When: PROBE_COOLDOWN after the pause (401, 402, breaker), or the next daily reset for 433 (KIE_DAILY_RESET, UTC
 * time of day, default midnight: kie's daily key cap, kie-samples 08). Only one worker starts a probe (compare-and-set
 * on the reason), and `upscale resume` lifts any pause at any time.
 */
import { isKieError } from '../kie/errors.js';
import { probeStorage } from '../storage/index.js';
import type { Lane } from '../queue/names.js';
import { getPauseReason, parsePauseReason, setPauseReason, swapPauseReason, type PauseReason, type ProbeInfo } from '../queue/pause-reason.js';
import type { Config } from '../config/index.js';
import type { LaneContext } from './context.js';

const DAY_MS = 86_400_000;

/** The next time of day `resetMs` (ms after UTC midnight) strictly after `now` (Unix ms). */
export function nextDailyReset(now: number, resetMs: number): number {
  const midnight = now - (now % DAY_MS);
  const today = midnight + resetMs;
  return today > now ? today : today + DAY_MS;
}

/** First gap between store probes (ms); doubled after each failed probe, never over PROBE_COOLDOWN. */
export const STORE_PROBE_FIRST_MS = 10_000;

/**
 * When a lane paused with `code` may probe: the next daily reset for 433; for `storage`, 10 s × 2^tries capped at
 * PROBE_COOLDOWN (`tries`: failed probes so far); PROBE_COOLDOWN from now otherwise.
 */
export function nextProbeAt(code: string, now: number, config: Pick<Config, 'probeCooldownMs' | 'dailyResetMs'>, tries = 0): number {
  if (code === '433') return nextDailyReset(now, config.dailyResetMs);
  if (code === 'storage') return now + Math.min(config.probeCooldownMs, STORE_PROBE_FIRST_MS * 2 ** Math.min(tries, 20));
  return now + config.probeCooldownMs;
}

export interface PauseRequest {
  code: string;
  message: string;
  /** The lane whose answer caused it. */
  source: Lane;
  kind: ProbeInfo['kind'];
  signature?: string;
}

/**
 * Pauses `lane` with a self-lifting reason. A probe already counted for this pause carries its count over (the
 * reason of a failed probe says how many were tried); a manual pause is never replaced (the operator decides).
 */
export async function pauseWithProbe(ctx: LaneContext, lane: Lane, req: PauseRequest): Promise<PauseReason> {
  const { rt } = ctx;
  const now = Date.now();
  const existing = await getPauseReason(rt.redis, rt.store.keys, lane);
  if (existing && !existing.probe) {
    await rt.queues[lane].pause();
    return existing;
  }
  const sameCause = existing?.code === req.code;
  const probe: ProbeInfo = {
    kind: req.kind,
    at: nextProbeAt(req.code, now, rt.config, sameCause ? (existing?.probe?.tries ?? 0) : 0),
    tries: sameCause ? (existing?.probe?.tries ?? 0) : 0,
    running: false,
    ...(req.signature ? { signature: req.signature } : {}),
    ...(sameCause && existing?.probe?.running ? { last: req.message } : {}),
  };
  const reason: PauseReason = { code: req.code, message: req.message, at: sameCause && existing ? existing.at : now, source: req.source, probe };
  await setPauseReason(rt.redis, rt.store.keys, lane, reason);
  await rt.queues[lane].pause();
  await rt.redis.del(rt.store.keys.probeToken(lane));
  return reason;
}

/** Lifts a self-lifting pause of `lane` (after a successful probe). False when there was none (or it changed). */
export async function liftPause(ctx: LaneContext, lane: Lane, why: string): Promise<boolean> {
  const { rt, log } = ctx;
  const raw = await rt.redis.get(rt.store.keys.pauseReason(lane));
  if (!raw) return false;
  const reason = parsePauseReason(raw);
  if (!reason.probe) return false;
  if (!(await swapPauseReason(rt.redis, rt.store.keys, lane, raw, null))) return false;
  await rt.queues[lane].resume();
  await rt.redis.del(rt.store.keys.probeToken(lane));
  ctx.counters.inc('upscale_lane_probes_total', { lane, result: 'resumed' });
  log.warn({ lane, code: reason.code, pausedForMs: Date.now() - reason.at, probes: reason.probe.tries }, `${lane} lane resumed on its own: ${why}`);
  return true;
}

/** Runs the probes of the paused lanes this process works on. */
export class LaneProber {
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly ctx: LaneContext,
    private readonly lanes: readonly Lane[],
    /** Time between two looks at the pause reasons. @defaultValue PROBE_COOLDOWN / 10, within 100 ms..5 s */
    private readonly intervalMs = Math.min(5000, Math.max(100, Math.round(ctx.rt.config.probeCooldownMs / 10))),
  ) {}

  start(): void {
    if (this.lanes.length === 0) return;
    const loop = () => {
      if (this.stopped) return;
      this.ticking = this.tick()
        .catch((err: unknown) => this.ctx.log.warn({ err }, 'lane probe check failed; trying again'))
        .finally(() => {
          this.ticking = undefined;
          if (!this.stopped) {
            this.timer = setTimeout(loop, this.intervalMs);
            this.timer.unref();
          }
        });
    };
    this.timer = setTimeout(loop, Math.min(this.intervalMs, 200));
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.ticking;
  }

  /** One look at every lane: starts the probes that are due. */
  async tick(now = Date.now()): Promise<void> {
    for (const lane of this.lanes) await this.check(lane, now);
  }

  private async check(lane: Lane, now: number): Promise<void> {
    const { rt } = this.ctx;
    const raw = await rt.redis.get(rt.store.keys.pauseReason(lane));
    if (!raw) return;
    const reason = parsePauseReason(raw);
    const probe = reason.probe;
    if (!probe) return;
    const queue = rt.queues[lane];
    if (probe.running) {
      // A worker that died between marking the probe and resuming the queue left it paused: finish its step.
      if (now - (probe.startedAt ?? 0) > rt.config.jobLockMs && (await queue.isPaused())) await queue.resume();
      return;
    }
    if (now < probe.at) return;
    if (probe.kind === 'key') return this.keyProbe(lane, raw, reason, probe);
    if (probe.kind === 'store') return this.storeProbe(lane, raw, reason, probe);
    if (lane !== 'submit') return;
    const next: PauseReason = { ...reason, probe: { ...probe, running: true, startedAt: now, tries: probe.tries + 1 } };
    if (!(await swapPauseReason(rt.redis, rt.store.keys, lane, raw, next))) return;
    await rt.redis.del(rt.store.keys.probeToken(lane));
    await queue.resume();
    this.ctx.counters.inc('upscale_lane_probes_total', { lane, result: 'started' });
    this.ctx.log.warn({ lane, code: reason.code, probe: next.probe?.tries }, `${lane} lane paused (${reason.code}): probing with one image`);
  }

  /** `storage`: one write-read of the probe object tells whether the store works again. */
  private async storeProbe(lane: Lane, raw: string, reason: PauseReason, probe: ProbeInfo): Promise<void> {
    const { rt, log, storage } = this.ctx;
    if (!storage) return; // a process without the download lane's store leaves the probe to one that has it
    const token = rt.store.keys.probeToken(lane);
    if ((await rt.redis.set(token, 'store', 'PX', Math.max(30_000, rt.config.requestTimeoutMs * 2), 'NX')) !== 'OK') return;
    try {
      await probeStorage(storage, this.ctx.stopper.aborted);
      await liftPause(this.ctx, lane, `the output store ${storage.url} takes writes again`);
    } catch (e) {
      const what = e instanceof Error ? e.message : String(e);
      const tries = probe.tries + 1;
      const next: PauseReason = { ...reason, probe: { ...probe, tries, at: nextProbeAt(reason.code, Date.now(), rt.config, tries), last: what } };
      await swapPauseReason(rt.redis, rt.store.keys, lane, raw, next);
      this.ctx.counters.inc('upscale_lane_probes_total', { lane, result: 'refused' });
      log.warn({ lane, code: reason.code, probe: tries, answer: what, nextProbeAt: new Date(next.probe?.at ?? 0).toISOString() }, `${lane} lane stays paused: store probe failed`);
    } finally {
      await rt.redis.del(token);
    }
  }

  /** 401: one free credit call tells whether the key works again. */
  private async keyProbe(lane: Lane, raw: string, reason: PauseReason, probe: ProbeInfo): Promise<void> {
    const { rt, log } = this.ctx;
    const token = rt.store.keys.probeToken(lane);
    if ((await rt.redis.set(token, 'key', 'PX', Math.max(30_000, rt.config.requestTimeoutMs * 2), 'NX')) !== 'OK') return;
    try {
      await rt.kie.getCredits();
      await liftPause(this.ctx, lane, 'the API key works again (credit balance answered)');
    } catch (e) {
      const what = isKieError(e) ? `${e.code ?? 'no answer'} ${e.kieMessage}` : String(e);
      const next: PauseReason = { ...reason, probe: { ...probe, tries: probe.tries + 1, at: nextProbeAt(reason.code, Date.now(), rt.config), last: what } };
      await swapPauseReason(rt.redis, rt.store.keys, lane, raw, next);
      this.ctx.counters.inc('upscale_lane_probes_total', { lane, result: 'refused' });
      log.warn({ lane, code: reason.code, probe: next.probe?.tries, answer: what, nextProbeAt: new Date(next.probe?.at ?? 0).toISOString() }, `${lane} lane stays paused: key probe failed`);
    } finally {
      await rt.redis.del(token);
    }
  }
}

/**
 * Pauses the download lane because the output store failed (a `StorageAuthError` or `StorageUnavailableError`):
 * code `storage`, the store's message plus what to do, and a store probe that lifts the pause once the store takes
 * writes again. No image's try is spent. A manual pause stays as it is.
 */
export async function pauseDownloadsForStore(ctx: LaneContext, error: Error, auth: boolean): Promise<PauseReason> {
  const fix = auth
    ? 'Fix the credentials or permissions; the lane resumes on its own once a probe write works (or run `upscale resume --lanes download`).'
    : 'The lane resumes on its own once a probe write works (or run `upscale resume --lanes download`).';
  return pauseWithProbe(ctx, 'download', { code: 'storage', message: `${error.message}. ${fix}`, source: 'download', kind: 'store' });
}
