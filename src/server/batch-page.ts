/**
 * The page of one batch (`/dashboard/batches/:id`) and its comparison view: server-rendered HTML, every value
 * escaped. Pure functions of the data. Every link, image, form action and redirect is an absolute path built with
 * `publicUrl(publicPath, ...)`: a relative one resolves differently with and without a trailing slash on the page's
 * URL, and a path without the public prefix misses a reverse proxy's location (public-path.ts).
 */
import { formatDuration } from '../config/units.js';
import { MAX_SEARCH_MATCHES, type FailureGroup, type QueryPage, type RecordQuery } from '../results/batch-query.js';
import { ACTIVE_STATES, STATES, type BatchSummary, type ResultRecord } from '../results/record.js';
import { renderChart } from './batch-chart.js';
import { COLORS, escapeHtml } from './batches-page.js';
import { publicUrl } from './public-path.js';

export interface BatchPageInput {
  summary: BatchSummary;
  query: RecordQuery;
  page: QueryPage;
  pageSize: number;
  groups: readonly FailureGroup[];
  minutes: readonly { minute: number; count: number }[];
  /** jobIds of the shown records that have thumbnails. */
  thumbs: ReadonlySet<string>;
  /** Whether "retry these" is offered (`--dashboard-write`). */
  write: boolean;
  now: number;
  /** A line shown above the table (the outcome of a retry, a query error). */
  notice?: string | undefined;
  error?: string | undefined;
  /** The public prefix every link carries (public-path.ts). @defaultValue `''` */
  publicPath?: string;
  /** Why the batch has no ETA now (status-view.ts `noEtaReason`), or null. */
  noEta?: string | null;
}

/** The app's paths of one batch, with the public prefix (absolute: right whatever the page's own URL). */
export function batchUrls(publicPath: string, batchId: string) {
  const id = encodeURIComponent(batchId);
  const page = publicUrl(publicPath, `/dashboard/batches/${id}`);
  return {
    list: publicUrl(publicPath, '/dashboard/batches'),
    page,
    compare: (jobId: string) => `${page}/compare/${encodeURIComponent(jobId)}`,
    thumb: (jobId: string, file: string) => `${page}/thumbs/${encodeURIComponent(jobId)}/${file}`,
    summary: publicUrl(publicPath, `/api/batches/${id}`),
    exportOf: publicUrl(publicPath, `/api/batches/${id}/export`),
    retry: publicUrl(publicPath, `/api/batches/${id}/retry`),
  };
}

type BatchUrls = ReturnType<typeof batchUrls>;

/** The query as URL parameters (only those set), plus `extra`. */
export function queryString(q: RecordQuery, extra: Record<string, string | number | undefined> = {}): string {
  const p = new URLSearchParams();
  if (q.state) p.set('state', q.state);
  if (q.failCode) p.set('failCode', q.failCode);
  if (q.group) p.set('group', q.group);
  if (q.search) p.set('q', q.search);
  if (q.sort && q.sort !== 'line') p.set('sort', q.sort);
  if (q.desc) p.set('order', 'desc');
  for (const [k, v] of Object.entries(extra)) if (v !== undefined && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s === '' ? '' : `?${s}`;
}

/** The `size` parameter every link of the page carries: the page's own rows per page, unless the default. */
function sizeParam(pageSize: number): { size: number | undefined } {
  return { size: pageSize === 50 ? undefined : pageSize };
}

function hasFilter(q: RecordQuery): boolean {
  return Boolean(q.state || q.failCode || q.group || q.search);
}

function credits(n: number | null): string {
  if (n === null) return '';
  return Number.isInteger(n) ? String(n) : n.toFixed(3).replace(/0+$/, '');
}

function durationOf(r: ResultRecord): string {
  if (r.costTimeMs !== null) return formatDuration(r.costTimeMs);
  if (r.completedAt !== null && r.submittedAt !== null) return formatDuration(r.completedAt - r.submittedAt);
  return '';
}

function baseName(path: string): string {
  return path.split(/[/\\]/).pop() ?? path;
}

function shortInput(input: string): string {
  const name = baseName(input.replace(/[?#].*$/, ''));
  return name.length > 48 ? `${name.slice(0, 47)}…` : name || input.slice(0, 48);
}

function row(r: ResultRecord, urls: BatchUrls, hasThumbs: boolean, back: string): string {
  const compare = escapeHtml(`${urls.compare(r.jobId)}${back}`);
  const thumbs = hasThumbs
    ? `<a class="thumbs" href="${compare}" title="compare before and after"><img src="${escapeHtml(urls.thumb(r.jobId, 'in-small.webp'))}" alt="before" loading="lazy"><img src="${escapeHtml(urls.thumb(r.jobId, 'out-small.webp'))}" alt="after" loading="lazy"></a>`
    : '';
  const meta = Object.entries(r.meta)
    .map(([k, v]) => `<span class="chip">${escapeHtml(k)}: ${escapeHtml(v)}</span>`)
    .join(' ');
  const fail = r.failCode !== null || (r.failMsg !== null && r.failMsg !== '')
    ? `<b>${escapeHtml(r.failCode ?? '')}</b> ${escapeHtml(r.failMsg ?? '')}`
    : '';
  // The stored output: its path on disk, or its URL in the bucket (never a credential in either).
  const stored = r.outputPath ?? r.outputUrl;
  const file = stored ? baseName(stored) : '';
  const output = stored
    ? `<span title="${escapeHtml(stored)}">${escapeHtml(file.length > 40 ? `…${file.slice(-39)}` : file)}</span>`
    : r.resultUrls[0]
      ? `<a href="${escapeHtml(r.resultUrls[0])}" rel="noreferrer noopener" target="_blank">result URL</a>`
      : '';
  return `<tr data-job-id="${escapeHtml(r.jobId)}" data-state="${escapeHtml(r.state)}">
<td class="num">${escapeHtml(r.line ?? '')}</td>
<td>${thumbs}</td>
<td class="input"><span title="${escapeHtml(r.input)}">${escapeHtml(shortInput(r.input))}</span>${meta ? `<br>${meta}` : ''}${r.taskId ? `<br><small>task ${escapeHtml(r.taskId)}</small>` : ''}</td>
<td><span class="st" style="background:${COLORS[r.state]}">${escapeHtml(r.state)}</span></td>
<td>${escapeHtml(r.model)}${r.factor ? ` ×${escapeHtml(r.factor)}` : ''}</td>
<td class="fail">${fail}</td>
<td class="num">${escapeHtml(credits(r.creditsConsumed))}</td>
<td class="num">${escapeHtml(durationOf(r))}</td>
<td class="out">${output}${hasThumbs ? ` <a href="${compare}">compare</a>` : ''}</td>
</tr>`;
}

/** Rows-per-page choices of the filter form, the page's own size among them (any 10-500 may be typed as `?size=`). */
function sizeOptions(current: number): string {
  return [...new Set([10, 25, 50, 100, 200, 500, current])]
    .sort((a, b) => a - b)
    .map((n) => `<option value="${n}"${n === current ? ' selected' : ''}>${n} per page</option>`)
    .join('');
}

function filterForm(input: BatchPageInput, urls: BatchUrls): string {
  const q = input.query;
  const states = ['', ...STATES]
    .map((s) => `<option value="${s}"${(q.state ?? '') === s ? ' selected' : ''}>${s === '' ? 'any state' : s}</option>`)
    .join('');
  const codes = [...new Set(input.groups.map((g) => g.failCode))];
  const codeOptions = ['', ...codes]
    .map((c) => `<option value="${escapeHtml(c)}"${(q.failCode ?? '') === c ? ' selected' : ''}>${c === '' ? 'any failCode' : escapeHtml(c)}</option>`)
    .join('');
  return `<form class="filters" method="get" action="${escapeHtml(urls.page)}">
<input type="search" name="q" value="${escapeHtml(q.search ?? '')}" placeholder="search: sku (meta), file name, task id" aria-label="search" size="34">
<select name="state" aria-label="state">${states}</select>
<select name="failCode" aria-label="failCode">${codeOptions}</select>
<select name="sort" aria-label="sort"><option value="line"${q.sort === 'finished' ? '' : ' selected'}>by line</option><option value="finished"${q.sort === 'finished' ? ' selected' : ''}>by finish time</option></select>
<select name="order" aria-label="order"><option value="asc"${q.desc ? '' : ' selected'}>ascending</option><option value="desc"${q.desc ? ' selected' : ''}>descending</option></select>
${q.group ? `<input type="hidden" name="group" value="${escapeHtml(q.group)}">` : ''}
<select name="size" aria-label="rows per page">${sizeOptions(input.pageSize)}</select>
<button type="submit">Apply</button> ${hasFilter(q) || q.sort || q.desc ? `<a href="${escapeHtml(urls.page + queryString({}, sizeParam(input.pageSize)))}">clear</a>` : ''}
</form>`;
}

function failures(input: BatchPageInput, urls: BatchUrls): string {
  if (input.groups.length === 0) return '';
  const rows = input.groups
    .map(
      (g) =>
        `<tr data-group="${escapeHtml(g.id)}"><td><a class="code" href="${escapeHtml(urls.page + queryString({ failCode: g.failCode }, sizeParam(input.pageSize)))}">${escapeHtml(g.failCode)}</a></td><td><a class="reason" href="${escapeHtml(urls.page + queryString({ group: g.id }, sizeParam(input.pageSize)))}">${escapeHtml(g.reason || '(no message)')}</a>${g.example && g.example !== g.reason ? `<br><small class="example">e.g. ${escapeHtml(g.example)}</small>` : ''}</td><td class="num">${g.count}</td></tr>`,
    )
    .join('');
  return `<section class="failures"><h2>Failures</h2><table><thead><tr><th>failCode</th><th>reason</th><th>images</th></tr></thead><tbody>${rows}</tbody></table></section>`;
}

function pager(input: BatchPageInput, urls: BatchUrls): string {
  const { page, pageSize, query } = input;
  if (page.total === 0) return `<p class="pager"><span class="range">no images${hasFilter(query) ? ' match these filters' : ''}</span></p>`;
  const from = page.offset + 1;
  const to = page.offset + page.records.length;
  const current = Math.floor(page.offset / pageSize) + 1;
  const pages = Math.max(1, Math.ceil(page.total / pageSize));
  const link = (n: number, text: string, rel: string) =>
    `<a rel="${rel}" href="${escapeHtml(urls.page + queryString(query, { page: n, ...sizeParam(pageSize) }))}">${text}</a>`;
  const prev = current > 1 ? link(current - 1, '← previous', 'prev') : '<span>← previous</span>';
  const next = current < pages ? link(current + 1, 'next →', 'next') : '<span>next →</span>';
  const capped = page.capped ? ` <b class="capped">(the search matched more than the page looks at: the count and pages cover its first ${MAX_SEARCH_MATCHES.toLocaleString('en-US')} matching terms; refine it — "export these" and "retry these" still take every match)</b>` : '';
  return `<p class="pager"><span class="range">${from}–${to} of ${page.total}</span> · page ${current} of ${pages} · ${prev} · ${next}${capped}</p>`;
}

function summaryBlock(s: BatchSummary, urls: BatchUrls, pageSize: number): string {
  const done = s.total - ACTIVE_STATES.reduce((n, st) => n + s.counts[st], 0);
  const counts = STATES.map(
    (st) =>
      `<li><a href="${escapeHtml(urls.page + queryString({ state: st }, sizeParam(pageSize)))}"><i style="background:${COLORS[st]}"></i>${escapeHtml(st)} <b class="count-${st}">${s.counts[st]}</b></a></li>`,
  ).join('');
  return `<p class="progress"><b>${done}</b> of <b>${s.total}</b> done · credits used <b>${escapeHtml(credits(s.creditsConsumed))}</b></p>
<ul class="counts">${counts}</ul>`;
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f5f6f8;color:#1f2328}
header{background:#1f2937;color:#fff;padding:12px 24px;display:flex;gap:24px;align-items:baseline;flex-wrap:wrap}
header h1{font-size:18px;margin:0;font-family:ui-monospace,monospace} header a{color:#cfe1ff}
main{padding:12px 24px} h2{font-size:15px;margin:14px 0 6px}
.counts{list-style:none;padding:0;margin:4px 0;display:flex;gap:14px;flex-wrap:wrap} .counts a{color:inherit;text-decoration:none}
.counts i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px}
.top{display:flex;gap:24px;flex-wrap:wrap;align-items:flex-start}
.chart{margin:0;background:#fff;border:1px solid #dde;border-radius:6px;padding:8px} .chart svg{display:block;max-width:100%;height:auto}
.chart rect.bar-on{fill:#2e9e5b} .chart .axis{stroke:#aab} .chart .lbl{font:10px system-ui;fill:#57606a}
.chart figcaption{display:flex;justify-content:space-between;gap:12px;font-size:12px;color:#57606a}
.failures table,.records{background:#fff;border:1px solid #dde;border-collapse:collapse}
td,th{padding:4px 8px;border-bottom:1px solid #eef;text-align:left;vertical-align:top} th{background:#f0f2f5;font-weight:600}
.records{width:100%} .num{text-align:right;white-space:nowrap} .fail{max-width:260px;color:#a12622} .input{max-width:340px;word-break:break-all}
.st{color:#fff;border-radius:8px;padding:1px 6px;font-size:12px;white-space:nowrap} tr[data-state=waiting] .st,tr[data-state=submitting] .st{color:#1f2328}
.chip{display:inline-block;background:#eef2ff;border-radius:6px;padding:0 5px;margin:1px 2px 0 0;font-size:12px}
.thumbs{white-space:nowrap;display:inline-block} .thumbs img{width:48px;height:48px;object-fit:contain;background:#eee;margin-right:2px;vertical-align:middle}
.out{max-width:220px;word-break:break-all}
.filters{display:flex;gap:6px;flex-wrap:wrap;align-items:center;margin:8px 0} .actions{display:flex;gap:12px;align-items:center;flex-wrap:wrap}
.notice{background:#fff8db;border:1px solid #eed27a;padding:6px 10px;border-radius:6px} .error{background:#fff5f5;border-color:#d64541}
.empty{color:#57606a}`;

export function renderBatchPage(input: BatchPageInput): string {
  const s = input.summary;
  const urls = batchUrls(input.publicPath ?? '', s.batchId);
  const q = input.query;
  const pageNo = Math.floor(input.page.offset / input.pageSize) + 1;
  const back = queryString(q, { page: pageNo > 1 ? pageNo : undefined, ...sizeParam(input.pageSize) });
  const rows = input.page.records.map((r) => row(r, urls, input.thumbs.has(r.jobId), back)).join('\n');
  const remaining = ACTIVE_STATES.reduce((n, st) => n + s.counts[st], 0);
  const exportQs = (format: string, bom?: string) => escapeHtml(urls.exportOf + queryString(q, { format, bom }));
  const retry = input.write && input.page.total > 0
    ? `<form method="post" action="${escapeHtml(urls.retry + queryString(q))}" class="retry"><button type="submit" title="failed and timed_out images of this view get a new task">Retry these</button></form>`
    : '';
  const notice = input.error
    ? `<p class="notice error">${escapeHtml(input.error)}</p>`
    : input.notice
      ? `<p class="notice">${escapeHtml(input.notice)}</p>`
      : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(s.batchId)} · batches · kie-upscale-queue</title>
<style>${CSS}</style></head>
<body>
<header><h1>${escapeHtml(s.batchId)}</h1><nav><a href="${escapeHtml(urls.list)}">All batches</a> · <a href="${escapeHtml(urls.summary)}">summary JSON</a></nav></header>
<main>
<div class="top"><div>${summaryBlock(s, urls, input.pageSize)}${failures(input, urls)}</div>
<section><h2>Images finished per minute</h2>${renderChart({ minutes: input.minutes, remaining, now: input.now, etaSeconds: s.etaSeconds, perMinute: s.throughputPerMinute, noEta: input.noEta ?? null })}</section></div>
<h2>Images</h2>
${filterForm(input, urls)}
${notice}
<div class="actions">${pager(input, urls)}<span>Export these: <a href="${exportQs('csv')}">CSV</a> · <a href="${exportQs('csv', '1')}" title="CSV with a UTF-8 byte order mark, which Excel needs to read ü, é, € right">Excel</a> · <a href="${exportQs('jsonl')}">JSONL</a></span>${retry}</div>
<table class="records"><thead><tr><th>line</th><th>before / after</th><th>input</th><th>state</th><th>model</th><th>failure</th><th>credits</th><th>duration</th><th>output</th></tr></thead>
<tbody>
${rows || `<tr><td colspan="9" class="empty">No image matches${hasFilter(q) ? ' these filters' : ''}.</td></tr>`}
</tbody></table>
${pager(input, urls)}
</main></body></html>
`;
}

export interface ComparePageInput {
  record: ResultRecord;
  /** The batch page's query string to go back to (already `?...` or ''). */
  back: string;
  /** The public prefix every link carries (public-path.ts). @defaultValue `''` */
  publicPath?: string;
  /** Both full-size thumbnails are there: without them only the reason is shown (no frame of broken images). */
  frames: boolean;
}

/**
 * Before and after in one frame: the output over the input, a slider moving the split, and a zoom that crops
 * both the same way (both previews share one size, so the same transform is the same crop). Works without
 * script as side-by-side images; the slider needs a few lines of inline script.
 */
/** Why an image has no before/after (not succeeded, or its output not stored), as a notice; '' when it has one. */
function noComparison(r: ResultRecord, frames: boolean): string {
  let why: string | null = null;
  if (r.state !== 'succeeded') {
    const cause = r.failCode ? `: ${r.failCode}${r.failMsg ? ` — ${r.failMsg}` : ''}` : '';
    why = `This image is ${r.state}${cause}. Thumbnails are made only for succeeded images whose output was downloaded, so there is nothing to compare.`;
  } else if (!r.outputUrl) {
    why = `This image succeeded but its output was not stored${r.outputProblem ? ` (${r.outputProblem})` : ' (no OUTPUT_URL / OUTPUT_DIR, or the download is pending)'}, so there are no thumbnails to compare.`;
  } else if (!frames) {
    why = 'This image succeeded and its output is stored, but its thumbnails are not there (the download lane makes them after checking the output; a worker from before thumbnails, or a failure making them, leaves none), so there is nothing to compare.';
  }
  return why === null ? '' : `<p class="why" role="note" style="text-align:center;margin:12px 20px">${escapeHtml(why)}</p>\n`;
}

/** The comparison itself: the stage (slider, zoom) and the side-by-side pair. */
function frame(thumb: (file: string) => string): string {
  return `<div class="stage" id="stage">
<img class="before" src="${thumb('in.webp')}" alt="before (input)">
<img class="after" src="${thumb('out.webp')}" alt="after (output)">
<span class="line"></span><span class="tag b">before</span><span class="tag a">after</span>
</div>
<div class="controls">
<label>split <input id="split" type="range" min="0" max="100" value="50" aria-label="split"></label>
<label>zoom <select id="zoom" aria-label="zoom"><option value="1">fit</option><option value="2">2×</option><option value="4">4×</option></select></label>
<span>click the image to choose the zoom's centre</span>
</div>
<div class="side"><figure><img src="${thumb('in.webp')}" alt="before"><figcaption>before</figcaption></figure><figure><img src="${thumb('out.webp')}" alt="after"><figcaption>after</figcaption></figure></div>
<script>
(function () {
  var stage = document.getElementById('stage');
  var set = function (k, v) { stage.style.setProperty(k, v); document.querySelectorAll('.side img').forEach(function (i) { i.style.setProperty(k, v); }); };
  document.getElementById('split').addEventListener('input', function (e) { stage.style.setProperty('--split', e.target.value + '%'); });
  document.getElementById('zoom').addEventListener('change', function (e) { set('--zoom', e.target.value); });
  stage.addEventListener('click', function (e) {
    var b = stage.getBoundingClientRect();
    set('--ox', ((e.clientX - b.left) / b.width * 100).toFixed(1) + '%');
    set('--oy', ((e.clientY - b.top) / b.height * 100).toFixed(1) + '%');
  });
})();
</script>
`;
}

export function renderComparePage(input: ComparePageInput): string {
  const r = input.record;
  const urls = batchUrls(input.publicPath ?? '', r.batchId);
  const thumb = (file: string) => escapeHtml(urls.thumb(r.jobId, file));
  const title = `${shortInput(r.input)} · ${r.batchId}`;
  const why = noComparison(r, input.frames);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · compare</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:0;background:#111;color:#eee} a{color:#9cc3ff}
header{padding:10px 20px;display:flex;gap:20px;align-items:baseline;flex-wrap:wrap} header h1{font-size:16px;margin:0}
.stage{position:relative;width:min(92vw,640px);aspect-ratio:1;margin:0 auto;overflow:hidden;background:#222}
.stage img{position:absolute;inset:0;width:100%;height:100%;object-fit:contain;transform-origin:var(--ox,50%) var(--oy,50%);transform:scale(var(--zoom,1))}
.stage .after{clip-path:inset(0 0 0 var(--split,50%))}
.stage .line{position:absolute;top:0;bottom:0;left:var(--split,50%);width:2px;background:#fff;pointer-events:none}
.stage .tag{position:absolute;top:6px;font:600 12px system-ui;background:#000a;padding:2px 6px;border-radius:4px} .tag.b{left:6px} .tag.a{right:6px}
.controls{display:flex;gap:16px;justify-content:center;align-items:center;margin:10px;flex-wrap:wrap}
.side{display:flex;gap:8px;justify-content:center;margin:12px} .side figure{margin:0;text-align:center;overflow:hidden}
.side img{width:min(45vw,320px);aspect-ratio:1;object-fit:contain;background:#222;transform-origin:var(--ox,50%) var(--oy,50%);transform:scale(var(--zoom,1))}
</style></head>
<body>
<header><h1>${escapeHtml(shortInput(r.input))}</h1><a href="${escapeHtml(urls.page + input.back)}">← back to the batch</a>
<span>${escapeHtml(r.model)}${r.factor ? ` ×${escapeHtml(r.factor)}` : ''}${Object.entries(r.meta).map(([k, v]) => ` · ${escapeHtml(k)}: ${escapeHtml(v)}`).join('')}</span></header>
${why === '' ? frame(thumb) : why}</body></html>
`;
}
