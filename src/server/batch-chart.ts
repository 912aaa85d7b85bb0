/**
 * Progress over time for the batch page: images finished per minute as an inline SVG bar chart (no script), from the
 * per-minute counts kept by the index (results/index-lua.ts), captioned with the batch's one ETA: the summary's
 * `etaSeconds` and `throughputPerMinute`, as the batches page, `upscale status` and the API give them. (The chart
 * once computed its own from whole-minute bars, the current partial minute included: several times too long in a
 * batch's first minutes, and never the same as the other pages'.)
 */
import { formatCount, formatDuration } from '../config/units.js';
import { escapeHtml } from './batches-page.js';

/** Most bars drawn; longer spans put several minutes in one bar. */
export const MAX_BARS = 120;
export interface ChartInput {
  /** Unix minute → images finished in it. */
  minutes: readonly { minute: number; count: number }[];
  /** Images not finished yet (waiting, submitting, polling). */
  remaining: number;
  /** Unix ms "now" (the end of the chart while images remain). */
  now: number;
  /** The batch's ETA, seconds (BatchSummary.etaSeconds); null when there is none. */
  etaSeconds: number | null;
  /** The batch's rate, images per minute (BatchSummary.throughputPerMinute); null before it has one. */
  perMinute: number | null;
  /** Why the batch cannot move now (status-view.ts `noEtaReason`): shown instead of an ETA. */
  noEta?: string | null;
}

function hhmm(minute: number): string {
  return new Date(minute * 60_000).toISOString().slice(11, 16);
}

/** The SVG chart (or a sentence when nothing finished yet). */
export function renderChart(input: ChartInput): string {
  const { minutes } = input;
  // Why it cannot move, when nothing finished yet either (a batch paused before its first image ended said nothing).
  if (minutes.length === 0) return `<p class="empty">No image has finished yet${input.noEta ? `; no ETA: ${escapeHtml(input.noEta)}` : ''}.</p>`;
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
      const label = `${hhmm(first + i * width)} UTC: ${formatCount(n, 'image')} in ${unit}`;
      return `<rect class="bar-${n > 0 ? 'on' : 'off'}" x="${(i * bw + 0.5).toFixed(1)}" y="${(H - h).toFixed(1)}" width="${Math.max(1, bw - 1).toFixed(1)}" height="${h.toFixed(1)}"><title>${escapeHtml(label)}</title></rect>`;
    })
    .join('');
  const eta =
    input.remaining === 0
      ? 'all images finished'
      : input.noEta
        ? `${input.remaining} to go; no ETA: ${input.noEta}`
        : input.etaSeconds === null
          ? `${input.remaining} to go; no ETA yet`
          : `${input.remaining} to go · ETA ${formatDuration(input.etaSeconds * 1000)}${input.perMinute === null ? '' : ` at ${input.perMinute} images/min`}`;
  return `<figure class="chart" data-bins="${bins.length}" data-bin-minutes="${width}">
<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="images finished per ${escapeHtml(unit)}">
<line x1="0" y1="${H - 0.5}" x2="${W}" y2="${H - 0.5}" class="axis"/>${bars}
<text x="2" y="11" class="lbl">${max} per ${escapeHtml(unit)}</text></svg>
<figcaption><span>${escapeHtml(hhmm(first))} UTC</span> <b class="eta">${escapeHtml(eta)}</b> <span>${escapeHtml(hhmm(last))} UTC</span></figcaption>
</figure>`;
}
