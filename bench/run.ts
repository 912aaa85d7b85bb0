/**
 * `npm run bench [-- --scenario N]... [--quick] [--time-scale X]`: runs the benchmark scenarios against the
 * simulator, each figure beside its baseline measured in the same run, prints a markdown table on stdout and
 * writes `bench/results/latest.json` and `bench/results/<timestamp>.json`. See bench/README.md.
 */
import { execSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { runDrain } from './scenarios/drain.js';
import { runBatchPage } from './scenarios/batch-page.js';
import { runEnqueue } from './scenarios/enqueue.js';
import { runInflight } from './scenarios/inflight.js';
import { runOverhead } from './scenarios/overhead.js';
import { runFairShare } from './scenarios/fair-share.js';
import { runCatalogueScenario } from './scenarios/catalogue.js';
import { buildDist } from './lib/build.js';
import { ROOT, setProfileDir, setRunner, type Runner } from './lib/procs.js';
import { installInterruptHandlers } from './lib/interrupt.js';
import { log, markdownTable, type ScenarioResult } from './lib/report.js';

const USAGE = `usage: npm run bench -- [--scenario N]... [--quick] [--time-scale X] [--runner dist|tsx] [--images N]
  --scenario N     run scenario N (1 drain, 2 pipeline overhead, 3 enqueue, 4 in-flight scale, 5 batch page, 6 batch scheduler,
                   7 or catalogue: 100,000 images end to end with faults, about 18 min on 2 quiet cores, 45 under load; only when named); repeatable, or 1,3
  --quick          smaller sizes, for a smoke run (not for the figures)
  --time-scale X   speed-up of scenario 1 (default 10: a 500 s kie.ai drain takes 50 s) and of the catalogue (default 50)
  --images N       images of the catalogue scenario, at least 100 (default 100000; 10000 with --quick)
  --runner R       how measured processes run: dist (transpiled JavaScript, as production runs; default) or tsx
  --profile DIR    measured processes write V8 CPU profiles (--cpu-prof) into DIR`;

function fail(msg: string): never {
  process.stderr.write(`bench: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

const { values } = (() => {
  try {
    return parseArgs({
      options: {
        scenario: { type: 'string', multiple: true },
        quick: { type: 'boolean', default: false },
        'time-scale': { type: 'string' },
        runner: { type: 'string', default: 'dist' },
        profile: { type: 'string' },
        images: { type: 'string' },
        help: { type: 'boolean', default: false },
      },
      strict: true,
    });
  } catch (e) {
    return fail((e as Error).message);
  }
})();
if (values.help) {
  process.stdout.write(USAGE + '\n');
  process.exit(0);
}
const selected = (values.scenario ?? ['1', '2', '3', '4', '5', '6'])
  .flatMap((s) => s.split(','))
  .map((s) => {
    const n = s.trim() === 'catalogue' ? 7 : Number(s.trim());
    if (![1, 2, 3, 4, 5, 6, 7].includes(n)) fail(`--scenario "${s}" must be 1 to 7 or catalogue`);
    return n;
  });
const images = values.images === undefined ? null : Number(values.images);
if (images !== null && !(Number.isSafeInteger(images) && images >= 100)) fail(`--images "${values.images}" must be a whole number of at least 100`);
if (images !== null && !selected.includes(7)) fail('--images applies to the catalogue scenario only (--scenario catalogue)');
const timeScale = values['time-scale'] === undefined ? 10 : Number(values['time-scale']);
if (!Number.isFinite(timeScale) || timeScale <= 0 || timeScale > 1000) fail(`--time-scale "${values['time-scale']}" must be a number above 0 (at most 1000)`);
/** The catalogue's own default: ×50 drains 100,000 images in under 30 minutes on two cores. */
const catalogueTimeScale = values['time-scale'] === undefined ? 50 : timeScale;
const quick = values.quick ?? false;
const runner = values.runner as Runner;
if (runner !== 'dist' && runner !== 'tsx') fail(`--runner "${String(values.runner)}" must be dist or tsx`);
setRunner(runner);
if (values.profile) setProfileDir(resolve(values.profile));

function sh(cmd: string): string {
  try {
    return execSync(cmd, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

const machine = () => ({
  uptime: sh('uptime'),
  loadavg: loadavg().map((l) => Math.round(l * 100) / 100),
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model ?? '',
  node: process.version,
  redis: sh('redis-cli INFO server | grep redis_version').replace(/\s+/g, ' '),
});

installInterruptHandlers(log);
const started = Date.now();
const before = machine();
log(`scenarios ${[...new Set(selected)].join(', ')}${quick ? ' (quick)' : ''}; load: ${before.uptime}`);
if (runner === 'dist') {
  const t = Date.now();
  const files = buildDist(ROOT);
  log(`transpiled ${files} files for the measured processes in ${Date.now() - t} ms`);
}
const results: ScenarioResult[] = [];
let catalogueDone: ScenarioResult | null = null;
const failures: { id: number; error: string }[] = [];
for (const id of [...new Set(selected)].sort()) {
  try {
    if (id === 1) results.push(await runDrain({ images: quick ? 200 : 1000, timeScale }));
    if (id === 2) results.push(await runOverhead({ images: quick ? 1000 : 5000 }));
    if (id === 3) results.push(await runEnqueue({ lines: quick ? 20_000 : 100_000 }));
    if (id === 4) results.push(await runInflight({ images: quick ? 2000 : 10_000 }));
    if (id === 5) results.push(await runBatchPage({ records: quick ? 10_000 : 100_000 }));
    if (id === 6) results.push(await runFairShare({ big: quick ? 20_000 : 100_000, small: quick ? 1000 : 2000 }));
    if (id === 7) {
      const r = await runCatalogueScenario({ images: images ?? (quick ? 10_000 : 100_000), timeScale: catalogueTimeScale });
      results.push(r);
      // The committed figures of the README: a full-size catalogue whose checks passed.
      if (r.setup.images === 100_000 && r.details.passed === true) catalogueDone = r;
    }
  } catch (e) {
    const error = e instanceof Error ? (e.stack ?? e.message) : String(e);
    log(`scenario ${id} failed: ${error}`);
    failures.push({ id, error });
  }
}
const after = machine();
const wallMs = Date.now() - started;
const table = markdownTable(results);
const out = {
  command: `npm run bench${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}`,
  quick,
  // Each scenario's time scale where it has one (its setup repeats it): scenario 1's and the catalogue's differ.
  timeScale: { drain: selected.includes(1) ? timeScale : null, catalogue: selected.includes(7) ? catalogueTimeScale : null },
  runner,
  startedAt: new Date(started).toISOString(),
  wallMs,
  machine: { before, after },
  git: { commit: sh('git rev-parse --short HEAD'), dirty: sh('git status --porcelain -- src') !== '' },
  results,
  failures,
  table,
};
const dir = join(ROOT, 'bench/results');
mkdirSync(dir, { recursive: true });
const stamp = new Date(started).toISOString().replace(/[:.]/g, '-');
writeFileSync(join(dir, `${stamp}${quick ? '-quick' : ''}.json`), JSON.stringify(out, null, 2) + '\n');
// latest.json (committed) holds only a complete full run.
const complete = !quick && failures.length === 0 && [1, 2, 3, 4, 5, 6].every((id) => results.some((r) => r.id === id));
if (complete) writeFileSync(join(dir, 'latest.json'), JSON.stringify(out, null, 2) + '\n');
// catalogue.json (committed) holds the last full-size catalogue run whose checks passed.
if (catalogueDone) writeFileSync(join(dir, 'catalogue.json'), JSON.stringify({ ...out, results: [catalogueDone], table: markdownTable([catalogueDone]) }, null, 2) + '\n');

process.stdout.write(`\n${table}\n\n`);
process.stdout.write(`load before: ${before.uptime}\nload after:  ${after.uptime}\n`);
process.stdout.write(`wall time: ${(wallMs / 1000).toFixed(0)} s${failures.length ? `; FAILED: scenario ${failures.map((f) => f.id).join(', ')}` : ''}\n`);
process.exitCode = failures.length > 0 ? 1 : 0;
