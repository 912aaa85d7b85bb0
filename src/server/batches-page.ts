/**
 * The batches page (`/dashboard/batches`): plain server-rendered HTML with a little inline CSS, refreshed by a
 * meta refresh. Pure functions of the data, so they are tested with a fixed `now`. Every value is escaped, and
 * every link (and the buttons' POST URL) is an absolute path with the public prefix (`publicUrl`): right with or
 * without a trailing slash on the page's URL and behind a reverse proxy's prefix.
 */
import { describeProbe } from '../queue/pause-reason.js';
import { formatCount, formatDuration } from '../config/units.js';
import { LANES } from '../queue/names.js';
import { ACTIVE_STATES, STATES, type BatchSummary, type RecordState } from '../results/record.js';
import { describeDelivery, noEtaReason, renderCredits, renderLifecycle, type CreditsView, type NotificationsView, type PilotView } from '../results/status-view.js';
import type { LaneViews } from './lanes.js';
import { publicUrl } from './public-path.js';

export interface BatchesPageInput {
  batches: readonly BatchSummary[];
  lanes: LaneViews;
  /** Unix ms the data was read; ages and times are relative to it. */
  now: number;
  /** Seconds between reloads; 0 for none. @defaultValue `5` */
  refreshSeconds?: number;
  /** Batches not shown (older finished ones). @defaultValue `0` */
  hidden?: number;
  /** Where Bull Board is mounted. @defaultValue `/dashboard` */
  boardPath?: string;
  /** Notification delivery state (targets, pending, recent events). */
  notifications?: NotificationsView;
  /** Pilot outcomes by batch id. */
  pilots?: Readonly<Record<string, PilotView>>;
  /** The credit runway as last read. */
  credits?: CreditsView | null;
  /** Show pause/resume buttons per batch (src/server/batch-controls.ts). @defaultValue `false` */
  write?: boolean;
  /** The public prefix every link carries (behind a reverse proxy; see public-path.ts). @defaultValue `''` */
  publicPath?: string;
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Escapes text for HTML content and double- or single-quoted attributes. */
export function escapeHtml(value: string | number | null | undefined): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ESCAPES[c] as string);
}

export const COLORS: Record<RecordState, string> = {
  succeeded: '#2e9e5b',
  failed: '#d64541',
  timed_out: '#e6962e',
  cancelled: '#8a8f98',
  expired: '#b08968',
  held: '#f3e8c8',
  polling: '#3d7fd9',
  submitting: '#8fb8ee',
  waiting: '#e3e6ea',
};

function utc(at: number): string {
  return new Date(at)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d{3}Z$/, 'Z');
}

function when(at: number | null, now: number): string {
  if (at === null) return '-';
  return now >= at ? `${utc(at)} (${formatDuration(now - at)} ago)` : utc(at);
}

function credits(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(3).replace(/0+$/, '');
}

function doneOf(b: BatchSummary): number {
  return b.total - ACTIVE_STATES.reduce((n, s) => n + b.counts[s], 0);
}

export function isFinished(b: BatchSummary): boolean {
  return b.total > 0 && doneOf(b) === b.total && (b.downloadsPending ?? 0) === 0;
}

/** Finished states first, then those in flight; waiting is the bar's background. */
const BAR_ORDER: readonly RecordState[] = [
  'succeeded',
  'failed',
  'timed_out',
  'cancelled',
  'expired',
  'polling',
  'submitting',
];

/** A stacked bar: one segment per state, widths in percent of the total. */
function bar(b: BatchSummary): string {
  const done = doneOf(b);
  const segments = BAR_ORDER.filter((s) => b.counts[s] > 0)
    .map((s) => {
      const pct = b.total > 0 ? (b.counts[s] / b.total) * 100 : 0;
      return `<span class="seg" style="width:${pct.toFixed(2)}%;background:${COLORS[s]}" title="${escapeHtml(`${s}: ${b.counts[s]}`)}"></span>`;
    })
    .join('');
  return `<div class="bar" role="progressbar" aria-valuemin="0" aria-valuemax="${b.total}" aria-valuenow="${done}">${segments}</div>`;
}

/** One state badge: `finished`, else the gate's state (`paused`) when its gate is closed, else `running`. */
function stateBadge(b: BatchSummary, finished: boolean): string {
  const gate = b.gate ? `<span class="badge paused">${escapeHtml(b.gate.state)}</span>` : '';
  if (finished) return `<span class="badge done">finished</span>${gate ? ` ${gate}` : ''}`;
  if (gate) return gate;
  return '<span class="badge running">running</span>';
}

/** The batch's scheduling: a priority badge when not `normal`, the pause reason, and in write mode a button. */
function scheduleParts(b: BatchSummary, now: number, write: boolean, prefix: string): { badges: string; line: string } {
  const finished = isFinished(b);
  let badges = '';
  if (b.priority !== 'normal') badges += ` <span class="badge prio">${escapeHtml(b.priority)}</span>`;
  let line = '';
  if (b.gate) {
    const held = finished ? 'images added to it are held' : 'its waiting images are held; tasks already created are followed';
    line = `<p class="reason gate">${escapeHtml(`${b.gate.state}${b.gate.at > 0 ? ` since ${when(b.gate.at, now)}` : ''}: ${b.gate.reason}`)} — ${held}</p>`;
  }
  // A finished batch offers no pause, but a paused one can be resumed.
  if (write && (!finished || b.gate)) {
    const action = b.gate?.state === 'paused' ? 'resume' : b.gate ? '' : 'pause';
    if (action) line += `<p><button type="button" class="act" data-act="${action}" data-batch="${escapeHtml(b.batchId)}" data-url="${escapeHtml(publicUrl(prefix, `/dashboard/batches/${encodeURIComponent(b.batchId)}/${action}`))}">${action === 'pause' ? 'Pause batch' : 'Resume batch'}</button></p>`;
  }
  return { badges, line };
}

function batchBlock(b: BatchSummary, now: number, write: boolean, prefix: string, lanes: LaneViews, pilot?: PilotView): string {
  const sched = scheduleParts(b, now, write, prefix);
  const done = doneOf(b);
  const pct = b.total > 0 ? ((done / b.total) * 100).toFixed(1) : '0.0';
  const finished = isFinished(b);
  const id = encodeURIComponent(b.batchId);
  // held and expired only appear in batches that use a pilot or a deadline.
  const counts = STATES.filter((s) => (s !== 'held' && s !== 'expired') || b.counts[s] > 0).map(
    (s) =>
      `<li><i style="background:${COLORS[s]}"></i>${escapeHtml(s)} <b class="count-${s}">${b.counts[s]}</b></li>`,
  ).join('');
  let eta: string;
  if (finished)
    eta = b.finishedAt !== null && b.startedAt !== null ? formatDuration(b.finishedAt - b.startedAt) : '-';
  else {
    // A paused batch, one waiting for its pilot's approval, or one whose lane is paused does not move: why, not an ETA.
    const why = noEtaReason(b, lanes);
    eta = why ? `none: ${why}` : b.etaSeconds === null ? '-' : formatDuration(b.etaSeconds * 1000);
  }
  const facts: [string, string][] = [
    ['credits used', credits(b.creditsConsumed)],
    ['throughput', b.throughputPerMinute === null ? '-' : `${b.throughputPerMinute} images/min`],
    [finished ? 'duration' : 'ETA', eta],
    ['started', when(b.startedAt, now)],
    ['updated', when(b.updatedAt, now)],
  ];
  if (b.ambiguousSubmits > 0)
    facts.push(['ambiguous submits', `${b.ambiguousSubmits} (kie.ai may hold tasks for them)`]);
  const dl = facts.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`).join('');
  return `<article class="batch" data-batch-id="${escapeHtml(b.batchId)}">
<h2><a href="${escapeHtml(publicUrl(prefix, `/dashboard/batches/${id}`))}" title="images, failures and search">${escapeHtml(b.batchId)}</a> ${stateBadge(b, finished)}${sched.badges}</h2>
${bar(b)}${sched.line}
<p class="progress"><b>${done}</b> of <b>${b.total}</b> done (${pct}%)</p>
<ul class="counts">${counts}</ul>
<dl>${dl}</dl>
${renderLifecycle(b, pilot, now)
  .map((l) => `<p class="lifecycle">${escapeHtml(l.trim())}</p>`)
  .join('\n')}
<p class="links">Export: <a href="${escapeHtml(publicUrl(prefix, `/api/batches/${id}/export?format=jsonl`))}">JSONL</a> · <a href="${escapeHtml(publicUrl(prefix, `/api/batches/${id}/export?format=csv`))}">CSV</a> · <a href="${escapeHtml(publicUrl(prefix, `/api/batches/${id}/export?format=csv&bom=1`))}" title="CSV with a UTF-8 byte order mark, which Excel needs to read ü, é, € right">Excel</a> · <a href="${escapeHtml(publicUrl(prefix, `/api/batches/${id}`))}">summary JSON</a></p>
</article>`;
}

function laneBlock(name: string, l: LaneViews[keyof LaneViews], now: number): string {
  const state = l.paused ? 'paused' : l.slowedDown ? 'slowed down' : 'running';
  const c = l.counts;
  let reason = '';
  if (l.paused) {
    const r = l.reason;
    const text = r
      ? `${r.code}: ${r.message}${r.at > 0 ? ` (since ${when(r.at, now)})` : ''}`
      : 'no reason recorded';
    const fix = /upscale resume/.test(text) ? '' : ' — run <code>upscale resume</code> to continue';
    const probe = r ? describeProbe(r, now) : '';
    reason = `<p class="reason">${escapeHtml(text)}${fix}</p>${probe ? `<p class="probe">${escapeHtml(probe)}</p>` : ''}`;
  } else if (l.reason?.probe?.running) {
    reason = `<p class="reason">${escapeHtml(`${l.reason.code}: ${l.reason.message}`)}</p><p class="probe">${escapeHtml(describeProbe(l.reason, now))}</p>`;
  }
  return `<div class="lane ${l.paused ? 'is-paused' : ''}" data-lane="${escapeHtml(name)}">
<h3>${escapeHtml(name)} <span class="badge ${l.paused ? 'paused' : 'running'}">${escapeHtml(state)}</span></h3>
<p>${c.waiting + c.prioritized} queued · ${c.active} active · ${c.delayed} delayed · ${c.failed} failed</p>${reason}
</div>`;
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f5f6f8;color:#1f2328}
header{background:#1f2937;color:#fff;padding:12px 24px;display:flex;gap:24px;align-items:baseline;flex-wrap:wrap}
header h1{font-size:18px;margin:0} header a{color:#cfe1ff} header .meta{color:#aab;margin-left:auto;font-size:12px}
main{padding:16px 24px;max-width:1100px}
.lanes{display:flex;gap:12px;flex-wrap:wrap;margin-bottom:16px}
.lane{background:#fff;border:1px solid #dde;border-radius:6px;padding:8px 12px;min-width:220px}
.lane.is-paused{border-color:#d64541;background:#fff5f5} .lane h3{margin:0 0 4px;font-size:15px} .lane p{margin:2px 0}
.reason{color:#a12622}
.batch{background:#fff;border:1px solid #dde;border-radius:6px;padding:12px 16px;margin-bottom:12px}
.batch h2{font-size:16px;margin:0 0 8px;font-family:ui-monospace,monospace}
.badge{font:600 11px system-ui;padding:2px 6px;border-radius:8px;vertical-align:middle;text-transform:uppercase}
.badge.running{background:#dbeafe;color:#1e40af} .badge.done{background:#dcfce7;color:#166534} .badge.paused{background:#fee2e2;color:#991b1b}
.bar{display:flex;height:14px;background:${COLORS.waiting};border-radius:7px;overflow:hidden}
.seg{display:block;height:100%}
.progress{margin:6px 0}
.counts{list-style:none;padding:0;margin:4px 0;display:flex;gap:14px;flex-wrap:wrap}
.counts i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:6px 0} dt{color:#57606a} dd{margin:0}
.empty{color:#57606a} .badge.prio{background:#ede9fe;color:#5b21b6}
button.act{font:600 12px system-ui;padding:3px 10px;border:1px solid #999;border-radius:4px;background:#fff;cursor:pointer}
.lifecycle{margin:2px 0;color:#1f2328} .notifications,.credits{background:#fff;border:1px solid #dde;border-radius:6px;padding:8px 12px;margin-bottom:12px}
.notifications h3{margin:0 0 4px;font-size:15px} .notifications ul{margin:4px 0;padding-left:18px}`;

/** Notification delivery: targets, pending deliveries, and the recent events with their state. */
function notificationsBlock(n: NotificationsView, now: number): string {
  const head =
    n.targets === 0
      ? 'No NOTIFY_URL: events are recorded here but not sent.'
      : `${formatCount(n.targets, 'target')} · ${formatCount(n.pending, 'delivery', 'deliveries')} pending${n.lastError ? ` · last failure: ${n.lastError} (retrying with backoff)` : ''}`;
  const rows = n.recent
    .map((e) => {
      const state = describeDelivery(e, n.targets);
      return `<li data-event="${escapeHtml(e.id)}"><b>${escapeHtml(e.type)}</b> ${escapeHtml(e.batchId ?? '')} · ${escapeHtml(when(e.at, now))} · <span class="delivery">${escapeHtml(state)}</span></li>`;
    })
    .join('');
  return `<section class="notifications"><h3>Notifications</h3><p>${escapeHtml(head)}</p>${rows ? `<ul>${rows}</ul>` : ''}</section>`;
}

/** Pause/resume buttons (write mode): a JSON POST, then a reload. */
const ACTIONS_SCRIPT = `<script>
document.addEventListener('click', async (e) => {
  const b = e.target instanceof Element ? e.target.closest('button[data-act]') : null;
  if (!b) return;
  b.disabled = true;
  const r = await fetch(b.dataset.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  if (r.ok) location.reload();
  else { b.disabled = false; alert((await r.json().catch(() => ({}))).error || r.statusText); }
});
</script>`;

/** The whole page. */
export function renderBatchesPage(input: BatchesPageInput): string {
  const refresh = input.refreshSeconds ?? 5;
  const prefix = input.publicPath ?? '';
  const board = publicUrl(prefix, input.boardPath ?? '/dashboard');
  const lanes = LANES.map((l) => laneBlock(l, input.lanes[l], input.now)).join('\n');
  const write = input.write ?? false;
  const batches = input.batches.map((b) => batchBlock(b, input.now, write, prefix, input.lanes, input.pilots?.[b.batchId])).join('\n');
  const notes = input.notifications ? notificationsBlock(input.notifications, input.now) : '';
  const runway = input.credits ? `<p class="credits">${escapeHtml(renderCredits(input.credits, input.now))}</p>` : '';
  const hidden = input.hidden ?? 0;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${refresh > 0 ? `<meta http-equiv="refresh" content="${refresh}">` : ''}
<title>Batches · kie-upscale-queue</title>
<style>${CSS}</style></head>
<body>
<header><h1>kie-upscale-queue · batches</h1>
<nav><a href="${escapeHtml(board)}">Queues (Bull Board)</a> · <a href="${escapeHtml(publicUrl(prefix, '/api/batches'))}">JSON</a></nav>
<span class="meta">read ${escapeHtml(utc(input.now))}${refresh > 0 ? ` · refreshes every ${refresh} s` : ''}</span></header>
<main>
<section class="lanes">${lanes}</section>
${runway}${notes}
<section class="batches">${batches || '<p class="empty">No batches yet (enqueue one with <code>upscale enqueue</code>).</p>'}</section>
${hidden > 0 ? `<p class="empty">${formatCount(hidden, 'older finished batch')} not shown (<a href="${escapeHtml(publicUrl(prefix, '/dashboard/batches?all=1'))}">show all</a>).</p>` : ''}
</main>${write ? ACTIONS_SCRIPT : ''}</body></html>
`;
}
