/**
 * Rendering of `upscale status`: pure functions from batch summaries and lane states to text, so they are tested
 * with a fixed `now`. Times are shown in UTC (`2026-11-21 22:30:15Z`) with their age; the JSON output
 * (`statusJson`) keeps them as stored, Unix milliseconds.
 */
import { describeProbe } from '../queue/pause-reason.js';
import { formatCount, formatDuration } from '../config/units.js';
import type { LaneStatus, LaneStatusMap } from '../queue/lane-status.js';
import { LANES, type Lane } from '../queue/names.js';
import { ACTIVE_STATES, pilotAwaitsApproval, STATES, type BatchSummary } from './record.js';

export interface RenderOptions {
  /** The time the summaries were read (Unix ms); ages and ETAs are relative to it. */
  now: number;
  /** Width of the progress bar in characters. @defaultValue `30` */
  barWidth?: number;
  /** Finished batches shown when listing every batch (active ones are always shown). @defaultValue `5` */
  maxFinished?: number;
}

/** Images not yet in a terminal state. */
export function activeCount(s: BatchSummary): number {
  return ACTIVE_STATES.reduce((n, state) => n + s.counts[state], 0);
}

/** A batch is finished when every image is in a terminal state (succeeded, failed, timed_out, cancelled, expired). */
export function isBatchFinished(s: BatchSummary): boolean {
  return s.total > 0 && activeCount(s) === 0 && (s.downloadsPending ?? 0) === 0;
}

/** `[#########.....................]` for done/total. */
export function progressBar(done: number, total: number, width = 30): string {
  const ratio = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
  const filled = Math.round(ratio * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

/** `2026-11-21 22:30:15Z`: UTC, to the second. */
export function isoUtc(at: number): string {
  return new Date(at).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, 'Z');
}

/** `2026-11-21 22:30:15Z (12m00s ago)`, or `-` for null. */
export function formatTime(at: number | null, now: number): string {
  if (at === null) return '-';
  return now >= at ? `${isoUtc(at)} (${formatDuration(now - at)} ago)` : isoUtc(at);
}

function percent(done: number, total: number): string {
  return total > 0 ? `${((done / total) * 100).toFixed(1)}%` : '0.0%';
}

function credits(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(3).replace(/0+$/, '');
}

/**
 * Why the batch has no ETA now, or null when its remaining images can move: they wait for the pilot's approval
 * (`held`, not approved), the batch is paused, or a lane they still need is paused (waiting images need submit and
 * poll, polling ones poll, pending downloads the download lane). A throughput-based ETA would be a
 * guess in each case: the batch does not move until someone acts.
 * @returns `waiting for approval of the pilot (90 held: upscale approve --batch B)`, `paused: <the batch's reason>`,
 *   `paused: poll lane (manual)`.
 */
export function noEtaReason(s: BatchSummary, lanes?: LaneStatusMap): string | null {
  if (isBatchFinished(s)) return null;
  if (pilotAwaitsApproval(s)) {
    return `waiting for approval of the pilot (${s.counts.held ?? 0} held: \`upscale approve --batch ${s.batchId}\`)`;
  }
  if (s.gate) return `${s.gate.state}: ${s.gate.reason}`;
  if (!lanes) return null;
  const unsent = s.counts.waiting + s.counts.submitting;
  const needed: Lane[] = [];
  if (unsent > 0) needed.push('submit');
  if (unsent + s.counts.polling > 0) needed.push('poll');
  if ((s.downloadsPending ?? 0) > 0) needed.push('download');
  const stopped = needed.filter((lane) => lanes[lane].paused);
  if (stopped.length === 0) return null;
  return `paused: ${stopped.map((lane) => `${lane} lane (${lanes[lane].reason?.code ?? 'no reason recorded'})`).join(', ')}`;
}

/**
 * A batch summary as JSON gives it (`upscale status --json`, `/api/batches`): when the batch cannot move until someone
 * acts ({@link noEtaReason}), `etaSeconds` is null and `noEta` says why, as the text and the pages say "no ETA: …";
 * otherwise `noEta` is null.
 */
export function withEta(s: BatchSummary, lanes?: LaneStatusMap): BatchSummary & { noEta: string | null } {
  const why = noEtaReason(s, lanes);
  return { ...s, etaSeconds: why === null ? s.etaSeconds : null, noEta: why };
}

/** The ETA as people read it: `ETA 4m24s`, `ETA -` (no throughput yet), or `no ETA: <why>` ({@link noEtaReason}). */
export function etaText(s: BatchSummary, lanes?: LaneStatusMap): string {
  const why = noEtaReason(s, lanes);
  if (why) return `no ETA: ${why}`;
  return s.etaSeconds === null ? 'ETA -' : `ETA ${formatDuration(s.etaSeconds * 1000)}`;
}

/** One batch: progress bar, counts per state, credits, throughput, ETA (or why none), times. */
export function renderBatch(s: BatchSummary, options: RenderOptions, lanes?: LaneStatusMap): string {
  const done = s.total - activeCount(s);
  const finished = isBatchFinished(s);
  // A finished batch can be paused too: images added to it later are held, so the pause is shown.
  const flags = `${finished ? '  finished' : ''}${s.gate ? `  ${s.gate.state.toUpperCase()}` : ''}${!finished && s.priority !== 'normal' ? `  priority ${s.priority}` : ''}`;
  const head = `batch ${s.batchId}  ${progressBar(done, s.total, options.barWidth)}  ${done}/${s.total} (${percent(done, s.total)})${flags}`;
  // held and expired only appear in batches that use a pilot or a deadline.
  const counts = STATES.filter((state) => (state !== 'held' && state !== 'expired') || s.counts[state] > 0)
    .map((state) => `${state} ${s.counts[state]}`)
    .join(' · ');
  const rate = s.throughputPerMinute === null ? 'throughput -' : `${s.throughputPerMinute}/min`;
  let eta: string;
  if (finished) eta = s.finishedAt !== null && s.startedAt !== null ? `took ${formatDuration(s.finishedAt - s.startedAt)}` : 'done';
  // A paused batch, one waiting for its pilot's approval, or one whose lane is paused does not move: why, not an ETA.
  else eta = etaText(s, lanes);
  const lines = [
    head,
    `  ${counts}`,
    `  credits ${credits(s.creditsConsumed)} · ${rate} · ${eta}`,
    `  started ${formatTime(s.startedAt, options.now)} · updated ${formatTime(s.updatedAt, options.now)}`,
  ];
  if (s.gate) lines.push(`  ${describeGate(s, options.now)}`);
  if (s.ambiguousSubmits > 0) {
    lines.push(`  ${formatCount(s.ambiguousSubmits, 'ambiguous submit')}: kie.ai may hold tasks for them (see ambiguousSubmits in the export)`);
  }
  return lines.join('\n');
}

function queued(l: LaneStatus): number {
  return (l.counts.waiting ?? 0) + (l.counts.prioritized ?? 0);
}

/** One line for every lane (`submit: running · 300 queued, 20 active, 0 delayed`), then one per paused lane with why. */
export function renderLanes(lanes: LaneStatusMap, now: number): string {
  const summary = LANES.map((lane) => {
    const l = lanes[lane];
    const state = l.paused ? 'PAUSED' : l.slowedDown ? 'slowed down after 429/455' : 'running';
    return `${lane} ${state} (${queued(l)} queued, ${l.counts.active ?? 0} active, ${l.counts.delayed ?? 0} delayed)`;
  }).join(' · ');
  const lines = [`lanes: ${summary}`];
  for (const lane of LANES) {
    const l = lanes[lane];
    if (l.paused) lines.push(`${lane} lane PAUSED: ${describeReason(l, now)}`);
    else if (l.reason?.probe?.running) lines.push(`${lane} lane PROBING (paused by ${l.reason.code}): ${describeProbe(l.reason, now)}`);
  }
  return lines.join('\n');
}

/** `PAUSED (since …): reason — run \`upscale resume --batch ID\` to continue` for a batch whose gate is closed. */
export function describeGate(s: BatchSummary, now: number): string {
  const g = s.gate;
  if (!g) return 'admitted';
  const since = g.at > 0 ? ` (since ${isoUtc(g.at)}${now >= g.at ? `, ${formatDuration(now - g.at)} ago` : ''})` : '';
  const held = isBatchFinished(s) ? 'images added to it are held' : 'its waiting images are held';
  const fix = g.state === 'paused' ? ` — ${held}; run \`upscale resume --batch ${s.batchId}\` to continue` : '';
  return `${g.state.toUpperCase()}${since}: ${g.reason}${fix}`;
}

function describeReason(l: LaneStatus, now: number): string {
  const r = l.reason;
  if (!r) return 'no reason recorded — run `upscale resume` to continue';
  const since = r.at > 0 ? ` (since ${isoUtc(r.at)}${now >= r.at ? `, ${formatDuration(now - r.at)} ago` : ''})` : '';
  const what = r.code === 'manual' || r.message.includes(r.code) ? r.message : `${r.code} ${r.message}`;
  const fix = /upscale resume/.test(r.message) ? '' : ' — run `upscale resume` to continue';
  const probe = describeProbe(r, now);
  return `${what}${since}${fix}${probe ? ` — ${probe}` : ''}`;
}

/** The notification facts status shows (the outbox's summary; see src/notify/outbox.ts). */
export interface NotificationsView {
  targets: number;
  pending: number;
  lastError: string | null;
  recent: readonly {
    id: string;
    type: string;
    batchId: string | null;
    at: number;
    delivered: number;
    pending: number;
    failed: number;
    lastError: string | null;
    /** Each target's own delivery (absent in views built before targets were listed: the counts are used). */
    targets?: readonly { target: string; state: 'pending' | 'delivered' | 'failed'; attempts: number; lastError: string | null }[];
  }[];
}

/**
 * An event's delivery for people, per target when the targets differ: `delivered`, `FAILED (HTTP 500)`, `pending
 * (ECONNREFUSED)`, or `delivered to #1 https://hooks.example.com/…; FAILED to #2 http://127.0.0.1:9/… (ECONNREFUSED)`
 * (one dead receiver does not make an event delivered to the others look failed). `recorded` without NOTIFY_URL.
 */
export function describeDelivery(e: NotificationsView['recent'][number], targets: number): string {
  if (targets === 0) return 'recorded';
  const one = (state: string, err: string | null) => (state === 'failed' ? `FAILED (${err ?? 'gave up'})` : state === 'pending' ? `pending${err ? ` (${err})` : ''}` : 'delivered');
  const per = e.targets ?? [];
  if (per.length <= 1 || per.every((t) => t.state === per[0]?.state)) {
    return one(e.failed > 0 ? 'failed' : e.pending > 0 ? 'pending' : 'delivered', e.lastError);
  }
  return per
    .map((t, i) => {
      const err = t.state !== 'delivered' && t.lastError ? ` (${t.lastError})` : '';
      return `${t.state === 'failed' ? 'FAILED' : t.state} to #${i + 1} ${t.target}${err}`;
    })
    .join('; ');
}

/** The pilot facts status shows (src/batch/pilot.ts). */
export interface PilotView {
  images: number;
  counts: Partial<Record<string, number>>;
  done: boolean;
  credits: number;
  creditsPerImage: number | null;
  extrapolatedCredits: number | null;
  approvedAt: number | null;
}

/** The credit runway facts status shows (src/worker/runway.ts). */
export interface CreditsView {
  balance: number;
  at: number;
  spent: number;
  needed: number | null;
  waitingImages: number | null;
  imagesLeft: number | null;
}

export interface StatusInput {
  batches: readonly BatchSummary[];
  lanes: LaneStatusMap;
  notifications?: NotificationsView;
  credits?: CreditsView | null;
  pilots?: Readonly<Record<string, PilotView>>;
}

/**
 * What a pilot asks of people next: `approved`; `running`; while the pilot is done and images are still held in an
 * open batch, `done: run \`upscale approve --batch B\` to submit the 90 held images (or \`upscale cancel\`)`; and
 * once nothing is held any more (cancelled, expired) or the batch finished without approval, `not approved (nothing
 * held any more)`: never advice to approve nothing.
 */
export function pilotNext(s: Pick<BatchSummary, 'batchId' | 'counts' | 'total' | 'downloadsPending'>, pilot: Pick<PilotView, 'approvedAt' | 'done'>): string {
  if (pilot.approvedAt !== null) return 'approved';
  const held = s.counts.held ?? 0;
  if (held === 0 || isBatchFinished(s as BatchSummary)) return 'not approved (nothing held any more)';
  if (!pilot.done) return 'running';
  return `done: run \`upscale approve --batch ${s.batchId}\` to submit the ${formatCount(held, 'held image')} (or \`upscale cancel --batch ${s.batchId}\`)`;
}

/** The batch's lifecycle lines: pilot, deadline, finished and where the results are. */
export function renderLifecycle(s: BatchSummary, pilot: PilotView | undefined, now: number): string[] {
  const lines: string[] = [];
  if (pilot) {
    const states = Object.entries(pilot.counts)
      .map(([state, n]) => `${n} ${state}`)
      .join(', ');
    const price = pilot.creditsPerImage === null ? 'no credits measured yet' : `${credits(pilot.creditsPerImage)} credits/image → about ${credits(pilot.extrapolatedCredits ?? 0)} credits for all ${s.total} images`;
    lines.push(`  pilot ${formatCount(pilot.images, 'image')}: ${states} · ${price} · ${pilotNext(s, pilot)}`);
  }
  if (s.deadlineAt !== null && s.deadlineAt !== undefined) {
    const left = s.deadlineAt - now;
    lines.push(`  deadline ${isoUtc(s.deadlineAt)} (${left > 0 ? `in ${formatDuration(left)}` : `passed; ${s.counts.expired} expired`})`);
  }
  if ((s.downloadsPending ?? 0) > 0) lines.push(`  ${formatCount(s.downloadsPending ?? 0, 'download')} still to do`);
  if ((s.downloadsFailed ?? 0) > 0) {
    lines.push(`  ${formatCount(s.downloadsFailed ?? 0, 'output')} MISSING: download failed (outputProblem in the records) · fetch again: upscale retry --batch ${s.batchId} --downloads`);
  }
  if (s.finalizedAt !== null && s.finalizedAt !== undefined) {
    lines.push(`  finished ${isoUtc(s.finalizedAt)} · ${s.resultsAt ? `results in ${s.resultsAt}/results.jsonl and summary.json` : `results: upscale export --batch ${s.batchId}`}`);
  }
  return lines;
}

/** One line for notifications (targets, pending, last failure) and one per recent event. */
export function renderNotifications(n: NotificationsView, now: number, max = 5): string {
  const head =
    n.targets === 0
      ? 'notifications: no NOTIFY_URL (events are recorded, not sent)'
      : `notifications: ${formatCount(n.targets, 'target')} · ${formatCount(n.pending, 'delivery', 'deliveries')} pending${n.lastError ? ` (last failure: ${n.lastError}; retrying with backoff)` : ''}`;
  const lines = [head];
  for (const e of n.recent.slice(0, max)) {
    lines.push(`  ${e.type}${e.batchId ? ` ${e.batchId}` : ''} · ${formatTime(e.at, now)} · ${describeDelivery(e, n.targets)}`);
  }
  return lines.join('\n');
}

/**
 * `credits: 1234 (read 20s ago) · then 80 waiting images needed about 5000 · credits for about 61 more images` (the
 * last part only when the need is more than the balance): the need is the one computed at that read (the images sent
 * since no longer wait), so it is said in the past.
 */
export function renderCredits(c: CreditsView, now: number): string {
  const parts = [`credits: ${credits(c.balance)} (read ${formatDuration(Math.max(0, now - c.at))} ago${c.spent > 0 ? `, about ${credits(c.spent)} sent since` : ''})`];
  if (c.needed !== null && c.needed > 0) {
    const images = c.waitingImages === null ? 'the waiting images' : formatCount(c.waitingImages, 'waiting image');
    parts.push(`then ${images} needed about ${credits(Math.round(c.needed))}`);
  }
  if (c.imagesLeft !== null && c.needed !== null && c.needed > c.balance) parts.push(`credits for about ${c.imagesLeft} more images`);
  return parts.join(' · ');
}

/**
 * The whole human view: a block per batch (every active batch, and the newest `maxFinished` finished ones when
 * listing), then the lanes.
 */
export function renderStatus(snapshot: StatusInput, options: RenderOptions & { listing?: boolean }): string {
  const maxFinished = options.maxFinished ?? 5;
  let shown = [...snapshot.batches];
  let hidden = 0;
  if (options.listing) {
    let finishedShown = 0;
    shown = snapshot.batches.filter((b) => !isBatchFinished(b) || finishedShown++ < maxFinished);
    hidden = snapshot.batches.length - shown.length;
  }
  const blocks = shown.map((b) => [renderBatch(b, options, snapshot.lanes), ...renderLifecycle(b, snapshot.pilots?.[b.batchId], options.now)].join('\n'));
  if (snapshot.batches.length === 0) blocks.push('no batches (enqueue one with `upscale enqueue`)');
  if (hidden > 0) blocks.push(`${formatCount(hidden, 'older finished batch')} not shown (\`upscale status --batch ID\` or \`--json\` lists them)`);
  const tail = [renderLanes(snapshot.lanes, options.now)];
  // Batch pauses beside lane pauses: a lane pause holds every batch, a batch pause only its own images.
  const gated = snapshot.batches.filter((b) => b.gate !== null && !isBatchFinished(b));
  if (gated.length > 0) tail.push(`batches held: ${gated.map((b) => `${b.batchId} (${b.gate?.state ?? ''})`).join(', ')}`);
  if (snapshot.credits) tail.push(renderCredits(snapshot.credits, options.now));
  if (snapshot.notifications) tail.push(renderNotifications(snapshot.notifications, options.now));
  blocks.push(tail.join('\n'));
  return blocks.join('\n\n') + '\n';
}

/**
 * The `--json` shape: the batch's whole summary with `--batch` (plus `pilot` and its `notifications`), else
 * `{ batches, lanes, pilots, notifications, credits }`. Times are Unix ms.
 */
export function statusJson(snapshot: StatusInput, batchId?: string): unknown {
  const batches = snapshot.batches.map((b) => withEta(b, snapshot.lanes));
  if (batchId !== undefined) {
    const b = batches[0];
    if (!b || (snapshot.notifications === undefined && snapshot.pilots === undefined)) return b ?? null;
    return { ...b, pilot: snapshot.pilots?.[b.batchId] ?? null, notifications: snapshot.notifications ?? null };
  }
  if (snapshot.notifications === undefined && snapshot.pilots === undefined && snapshot.credits === undefined) {
    return { batches, lanes: snapshot.lanes };
  }
  return { batches, lanes: snapshot.lanes, pilots: snapshot.pilots ?? {}, notifications: snapshot.notifications ?? null, credits: snapshot.credits ?? null };
}
