import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { checkServeOptions, parsePort } from '../../src/cli/commands/serve.js';
import { createLogger, registerSecret } from '../../src/log.js';
import type { BatchSummary } from '../../src/results/record.js';
import { requestSerializer } from '../../src/server/app.js';
import { checkBasicAuth, isLoopbackHost, warnIfDashboardExposed } from '../../src/server/auth.js';
import { escapeHtml, renderBatchesPage } from '../../src/server/batches-page.js';
import { scrubJobData } from '../../src/server/dashboard.js';
import type { LaneViews } from '../../src/server/lanes.js';
import { escapeLabel, renderCounters, renderGauges } from '../../src/server/metrics-text.js';

const basic = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;
const CREDS = { user: 'ops', password: 'p:a:ss' };

describe('basic auth', () => {
  it('accepts exactly the configured user and password (a password may hold colons)', () => {
    expect(checkBasicAuth(basic('ops:p:a:ss'), CREDS)).toBe(true);
    expect(checkBasicAuth(`basic   ${Buffer.from('ops:p:a:ss').toString('base64')}`, CREDS)).toBe(true);
    for (const bad of [
      undefined,
      '',
      'Basic',
      basic('ops'),
      basic('ops:'),
      basic(':p:a:ss'),
      basic('ops:p:a:s'),
      basic('Ops:p:a:ss'),
      'Bearer x',
      'Basic !!!',
    ]) {
      expect(checkBasicAuth(bad, CREDS), String(bad)).toBe(false);
    }
  });

  it('knows loopback hosts', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1'])
      expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', 'example.com', '128.0.0.1'])
      expect(isLoopbackHost(h), h).toBe(false);
  });

  it('warns only for an open dashboard beyond loopback', () => {
    const lines: string[] = [];
    const log = createLogger({
      level: 'warn',
      destination: new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }),
    });
    expect(warnIfDashboardExposed(log, '127.0.0.1', null)).toBe(false);
    expect(warnIfDashboardExposed(log, '0.0.0.0', CREDS)).toBe(false);
    expect(warnIfDashboardExposed(log, '0.0.0.0', null)).toBe(true);
    expect(lines.join('')).toContain('DASHBOARD WITHOUT AUTHENTICATION');
  });
});

describe('metrics text', () => {
  it('types families by suffix, groups histograms by label set with buckets in le order, skips bad names', () => {
    const text = renderCounters(
      new Map([
        ['b_total{x="1"}', 2],
        ['h_count{m="a"}', 3],
        ['h_bucket{le="+Inf",m="a"}', 3],
        ['h_bucket{le="5",m="a"}', 2],
        ['h_sum{m="a"}', 7.25],
        ['h_bucket{le="5",m="b"}', 1],
        ['h_bucket{le="+Inf",m="b"}', 1],
        ['h_sum{m="b"}', 1],
        ['h_count{m="b"}', 1],
        ['lonely_count', 4],
        ['bad-name_total', 1],
        ['a_total', 1],
      ]),
    );
    expect(text).toBe(
      [
        '# HELP a_total a_total (counted by the workers)',
        '# TYPE a_total counter',
        'a_total 1',
        '# HELP b_total b_total (counted by the workers)',
        '# TYPE b_total counter',
        'b_total{x="1"} 2',
        '# HELP h h (counted by the workers)',
        '# TYPE h histogram',
        'h_bucket{le="5",m="a"} 2',
        'h_bucket{le="+Inf",m="a"} 3',
        'h_sum{m="a"} 7.25',
        'h_count{m="a"} 3',
        'h_bucket{le="5",m="b"} 1',
        'h_bucket{le="+Inf",m="b"} 1',
        'h_sum{m="b"} 1',
        'h_count{m="b"} 1',
        '# HELP lonely_count lonely_count (counted by the workers)',
        '# TYPE lonely_count untyped',
        'lonely_count 4',
        '',
      ].join('\n'),
    );
  });

  it('renders gauges with escaped label values', () => {
    expect(escapeLabel('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
    expect(
      renderGauges([
        { name: 'upscale_redis_up', value: 1 },
        { name: 'g', labels: { l: 'x"y' }, value: 0.5 },
      ]),
    ).toBe(
      '# HELP upscale_redis_up 1 when Redis answered this scrape\n# TYPE upscale_redis_up gauge\nupscale_redis_up 1\n# HELP g g\n# TYPE g gauge\ng{l="x\\"y"} 0.5\n',
    );
  });
});

describe('batches page', () => {
  const now = Date.UTC(2026, 10, 21, 22, 30, 0);
  const lanes = Object.fromEntries(
    ['submit', 'poll', 'download'].map((l) => [
      l,
      {
        paused: false,
        reason: null,
        slowedDown: false,
        counts: { waiting: 0, prioritized: 0, delayed: 0, active: 0, completed: 0, failed: 0 },
      },
    ]),
  ) as LaneViews;
  const batch: BatchSummary = {
    batchId: 'b-1',
    total: 10,
    counts: { waiting: 2, submitting: 1, polling: 2, succeeded: 3, failed: 1, timed_out: 1, cancelled: 0, held: 0, expired: 0 },
    creditsConsumed: 60.5,
    createdAt: now - 120_000,
    startedAt: now - 60_000,
    updatedAt: now - 1000,
    finishedAt: null,
    ambiguousSubmits: 1,
    throughputPerMinute: 5,
    etaSeconds: 60,
    priority: 'normal',
    gate: null,
  };

  it('escapes every kind of special character', () => {
    expect(escapeHtml(`<a href="x" onclick='y'>&</a>`)).toBe(
      '&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;',
    );
  });

  it('renders progress, counts, credits, throughput, ETA, ambiguous submits and paused lanes', () => {
    const paused = {
      ...lanes,
      submit: {
        ...lanes.submit,
        paused: true,
        reason: { code: '401', message: 'bad key <b>', at: now - 5000 },
      },
    };
    const html = renderBatchesPage({ batches: [batch], lanes: paused, now, refreshSeconds: 0 });
    expect(html).toContain('<b>5</b> of <b>10</b> done (50.0%)');
    expect(html).toContain('style="width:30.00%;background:#2e9e5b"');
    expect(html).toContain('<dt>credits used</dt><dd>60.5</dd>');
    expect(html).toContain('<dd>5 images/min</dd>');
    expect(html).toContain('<dt>ETA</dt><dd>none: paused: submit lane (401)</dd>');
    expect(html).toContain('<dd>2026-11-21 22:29:00Z (1m00s ago)</dd>');
    expect(html).toContain('ambiguous submits');
    expect(html).toContain('401: bad key &lt;b&gt; (since 2026-11-21 22:29:55Z (5.0s ago))');
    expect(html).not.toContain('http-equiv');
    const done = renderBatchesPage({
      batches: [
        {
          ...batch,
          counts: { ...batch.counts, waiting: 0, submitting: 0, polling: 0, succeeded: 8 },
          finishedAt: now,
        },
      ],
      lanes,
      now,
      hidden: 3,
    });
    expect(done).toContain('<dt>duration</dt><dd>1m00s</dd>');
    expect(done).toContain('3 older finished batches not shown');
    expect(renderBatchesPage({ batches: [], lanes, now })).toContain('No batches yet');
  });
});

describe('secrets', () => {
  it('scrubs secret-looking keys and registered secrets / t= tokens from job data', () => {
    registerSecret('sk-scrub-test-secret');
    expect(
      scrubJobData({
        jobId: 'j',
        input: 'https://x.test/a.png?t=abcDEF123',
        nested: [{ apiKey: 'k', note: 'uses sk-scrub-test-secret' }],
        callBackUrl: 'u',
        n: 3,
      }),
    ).toEqual({
      jobId: 'j',
      input: 'https://x.test/a.png?t=[redacted]',
      nested: [{ apiKey: '[redacted]', note: 'uses [redacted]' }],
      callBackUrl: '[redacted]',
      n: 3,
    });
  });

  it('request log lines carry no token and no headers', () => {
    expect(
      requestSerializer({ method: 'POST', url: '/callbacks/kie/abc?t=Zx-_9&x=1', ip: '127.0.0.1' }),
    ).toEqual({
      method: 'POST',
      url: '/callbacks/kie/abc?t=[redacted]&x=1',
      remoteAddress: '127.0.0.1',
    });
  });
});

describe('serve flags', () => {
  const base = { port: '8080', host: '127.0.0.1', dashboard: true, callbacks: true, metrics: true };
  it('checks ports and conflicting flags', () => {
    expect(parsePort('0')).toBe(0);
    expect(parsePort('65535')).toBe(65535);
    for (const bad of ['65536', '-1', 'http', '', '1.5']) expect(() => parsePort(bad), bad).toThrow(/--port/);
    expect(() => checkServeOptions(base)).not.toThrow();
    expect(() => checkServeOptions({ ...base, dashboard: false, dashboardWrite: true })).toThrow(
      '--dashboard-write needs the dashboard',
    );
    expect(() => checkServeOptions({ ...base, dashboard: false, callbacks: false, metrics: false })).toThrow(
      'nothing to serve',
    );
    expect(() => checkServeOptions({ ...base, host: ' ' })).toThrow('--host is empty');
  });
});
