/**
 * Progress over time for the batch page: images finished per minute as an inline SVG bar chart (no script), and the
 * ETA at the recent rate. Pure functions of the per-minute counts kept by the index (results/index-lua.ts).
 */
import { formatDuration } from '../config/units.js';
import { escapeHtml } from './batches-page.js';

/** Most bars drawn; longer spans put several minutes in one bar. */
export const MAX_BARS = 120;
/** Minutes the "recent rate" of the ETA looks back over. */
export const RATE_WINDOW_MIN = 10;

export interface ChartInput {
  /** Unix minute → images finished in it. */
  minutes: readonly { minute: number; count: number }[];
  /** Images not finished yet (waiting, submitting, polling). */
  remaining: number;
  /** Unix ms "now" (the end of the chart while images remain). */
  now: number;
  /** Why the batch cannot move now (status-view.ts `noEtaReason`): shown instead of an ETA. */
  noEta?: string | null;
}

export interface Rate {
  /** Images per minute over the last RATE_WINDOW_MIN minutes (or since the first finish, when more recent). */
  perMinute: number;
  /** Seconds to finish the remaining images at that rate; null when nothing finished recently. */
  etaSeconds: number | null;
}

/** The recent rate and the ETA from it. */
export function recentRate(input: ChartInput): Rate {
  const nowMin = Math.floor(input.now / 60_000);
  const first = input.minutes[0]?.minute ?? nowMin;
  const from = Math.max(nowMin - RATE_WINDOW_MIN + 1, first);
  const span = Math.max(1, nowMin - from + 1);
  const recent = input.minutes.filter((m) => m.minute >= from && m.minute <= nowMin).reduce((n, m) => n + m.count, 0);
  const perMinute = recent / span;
  if (input.remaining === 0) return { perMinute, etaSeconds: 0 };
  return { perMinute, etaSeconds: perMinute > 0 ? Math.round((input.remaining / perMinute) * 60) : null };
}

function hhmm(minute: number): string {
  return new Date(minute * 60_000).toISOString().slice(11, 16);
}

/** The SVG chart (or a sentence when nothing finished yet). */
export function renderChart(input: ChartInput): string {
  const { minutes } = input;
  if (minutes.length === 0) return '<p class="empty">No image has finished yet.</p>';
  const first = (minutes[0] as { minute: number }).minute;
  const lastData = (minutes[minutes.length - 1] as { minute: number }).minute;
  const last = input.remaining > 0 ? Math.max(lastData, Math.floor(input.now / 60_000)) : lastData;
  const span = last - first + 1;
  const width = Math.max(1, Math.ceil(span / MAX_BARS));
  const bins = Array.from({ length: Math.ceil(span / width) }, () => 0);
  for (const m of minutes) {
    const i = Math.floor((m.minute - first) / width);
    if (i >= 0 && i < bins.length) bins[i] = (bins[i] ?? 0) + m.count;
  }
  const max = Math.max(...bins, 1);
  const W = 720;
  const H = 120;
  const bw = W / bins.length;
  const unit = width === 1 ? 'minute' : `${width} minutes`;
  const bars = bins
    .map((n, i) => {
      const h = (n / max) * (H - 16);
      const label = `${hhmm(first + i * width)} UTC: ${n} image(s) in ${unit}`;
      return `<rect class="bar-${n > 0 ? 'on' : 'off'}" x="${(i * bw + 0.5).toFixed(1)}" y="${(H - h).toFixed(1)}" width="${Math.max(1, bw - 1).toFixed(1)}" height="${h.toFixed(1)}"><title>${escapeHtml(label)}</title></rect>`;
    })
    .join('');
  const rate = recentRate(input);
  const eta =
    input.remaining === 0
      ? 'all images finished'
      : input.noEta
        ? `${input.remaining} to go; no ETA: ${input.noEta}`
        : rate.etaSeconds === null
        ? `${input.remaining} to go; none finished in the last ${RATE_WINDOW_MIN} minutes, so no ETA`
        : `${input.remaining} to go · ETA ${formatDuration(rate.etaSeconds * 1000)} at ${rate.perMinute.toFixed(1)} images/min (last ${RATE_WINDOW_MIN} min)`;
  return `<figure class="chart" data-bins="${bins.length}" data-bin-minutes="${width}">
<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="images finished per ${escapeHtml(unit)}">
<line x1="0" y1="${H - 0.5}" x2="${W}" y2="${H - 0.5}" class="axis"/>${bars}
<text x="2" y="11" class="lbl">${max} per ${escapeHtml(unit)}</text></svg>
<figcaption><span>${escapeHtml(hhmm(first))} UTC</span> <b class="eta">${escapeHtml(eta)}</b> <span>${escapeHtml(hhmm(last))} UTC</span></figcaption>
</figure>`;
}
