/**
 * Facts the README states that the code decides, held to the code (trial of issues 10/14, item K: the `--json`
 * summary's `counts` list left out `held` and `expired`; the age after which stale temp files are removed was not
 * given; `creditDrain` was described as a simulator feature no flag or control field set).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { register as registerSim } from '../../src/cli/commands/sim.js';
import { loadConfig } from '../../src/config/index.js';
import type { LaneStatusMap } from '../../src/queue/lane-status.js';
import { STATES } from '../../src/results/record.js';
import { statusJson } from '../../src/results/status-view.js';
import { summaryFrom } from '../../src/results/store.js';
import { downloadTimeoutMs } from '../../src/worker/download-lane.js';
import { ROOT } from '../helpers/processes.js';

const README = readFileSync(join(ROOT, 'README.md'), 'utf8').replace(/\s*\n\s*/g, ' ');

/** `a, b: { c, d }, e` → top-level names, and the nested lists by name. */
function fields(list: string): { top: string[]; nested: Record<string, string[]> } {
  const nested: Record<string, string[]> = {};
  const flat = list.replace(/(\w+): \{([^}]*)\}/g, (_, name: string, inner: string) => {
    nested[name] = inner.split(',').map((f) => f.trim()).filter(Boolean);
    return name;
  });
  return { top: flat.split(',').map((f) => f.trim()).filter(Boolean), nested };
}

describe('README facts', () => {
  it('`upscale status --batch ID --json` lists every field of the summary and every state in counts', () => {
    const m = /`--json` with `--batch` prints the batch summary `\{ (.+?) \}`/.exec(README);
    expect(m, 'the README sentence').not.toBeNull();
    const documented = fields(m?.[1] ?? '');
    const idle = { paused: false, reason: null, slowedDown: false, counts: { waiting: 0, prioritized: 0, delayed: 0, active: 0, completed: 0, failed: 0 } };
    const lanes: LaneStatusMap = { submit: idle, poll: idle, download: idle };
    const summary = summaryFrom('b1', { total: '1' }, Date.now());
    const shape = statusJson({ batches: [summary], lanes, pilots: {}, notifications: { targets: 0, pending: 0, lastError: null, recent: [] } }, 'b1') as Record<string, unknown>;
    expect([...documented.top].sort()).toEqual(Object.keys(shape).sort());
    expect(documented.nested.counts).toEqual([...STATES]);
    expect(Object.keys(summary.counts)).toEqual([...STATES]);
  });

  it('the age after which stale temp files are removed is the download timeout, as written', () => {
    expect(README).toContain('max(60 s, 4 × `KIE_REQUEST_TIMEOUT`): **2 minutes** by default');
    const config = loadConfig({}, {});
    expect(downloadTimeoutMs(config.requestTimeoutMs)).toBe(120_000);
  });

  it('the simulator drain the README describes has its flag and control field', () => {
    expect(README).toContain('`--credit-drain N`');
    expect(README).toMatch(/`creditDrain` \(credits per simulated second spent elsewhere; 0 stops the drain\)/);
    const program = new Command('upscale');
    registerSim(program);
    const sim = program.commands.find((c) => c.name() === 'sim');
    expect(sim?.options.map((o) => o.long)).toContain('--credit-drain');
  });
});
