/**
 * Processes stop when told (issue 10): the README's long-running commands are run exactly as documented, in a
 * shell, backgrounded with `&`, from a folder laid out like an install (bin/ over a transpiled dist/); `kill -TERM
 * $!` reaches the real `upscale` process, which exits 0 and leaves no process behind. (`npx upscale worker &` does
 * not: npm runs the command under `sh -c` and SIGTERM to npx leaves the worker running, which is why the README does
 * not document npx for long-running commands.) The Dockerfile
 * and compose file run the command in exec form (no `sh -c` in between) and give it longer than its drain.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_MARGIN_MS } from '../../src/cli/commands/worker.js';
import { parseDuration } from '../../src/config/units.js';
import { ROOT } from '../helpers/processes.js';
import { deletePrefix, freshPrefix, testRedisUrl, waitFor } from '../helpers/redis.js';

/** Transpiles src/ into `out` (no type check: `npm run typecheck` does that), as `npm run build` lays it out. */
function transpile(src: string, out: string): void {
  for (const name of readdirSync(src)) {
    const p = join(src, name);
    if (statSync(p).isDirectory()) {
      transpile(p, join(out, name));
      continue;
    }
    if (!name.endsWith('.ts') || name.endsWith('.d.ts')) continue;
    const { outputText } = ts.transpileModule(readFileSync(p, 'utf8'), {
      fileName: p,
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true, esModuleInterop: true },
    });
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, name.replace(/\.ts$/, '.js')), outputText);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Processes whose command line mentions `marker` (our temp folder), from /proc. */
function processesUnder(marker: string): { pid: number; cmd: string }[] {
  const out: { pid: number; cmd: string }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      if (cmd.includes(marker) && Number(name) !== process.pid) out.push({ pid: Number(name), cmd });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * Runs `script` in `sh` in `cwd`; the script backgrounds the documented command and prints `$!`. Resolves that pid
 * once the command has started (`readyText` in its output).
 */
async function startDocumented(script: string, cwd: string, env: Record<string, string>, readyText: RegExp) {
  const shell = spawn('sh', ['-c', `${script}\necho "pid=$!"\nwait`], { cwd, env: { ...process.env, ...env, FORCE_COLOR: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  shell.stdout.on('data', (d: Buffer) => (output += d.toString()));
  shell.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const pid = Number(await waitFor(() => /pid=(\d+)/.exec(output)?.[1], { timeoutMs: 60_000, what: 'the pid of the backgrounded command' }));
  await waitFor(() => readyText.test(output), { timeoutMs: 90_000, what: `${script} to start (${output.slice(-300)})` });
  const shellExit = new Promise<number | null>((r) => shell.on('close', (code) => r(code)));
  return { pid, output: () => output, shell, shellExit };
}

describe('long-running commands as the README documents them', () => {
  const prefix = freshPrefix('signals');
  let dir: string;
  let app: string;
  let consumer: string;
  let env: Record<string, string>;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'upscale-signals-'));
    // The package as installed: bin/, dist/, package.json, its dependencies.
    app = join(dir, 'app');
    mkdirSync(app, { recursive: true });
    cpSync(join(ROOT, 'bin'), join(app, 'bin'), { recursive: true });
    cpSync(join(ROOT, 'package.json'), join(app, 'package.json'));
    transpile(join(ROOT, 'src'), join(app, 'dist'));
    symlinkSync(join(ROOT, 'node_modules'), join(app, 'node_modules'));
    // A project that depends on it: node_modules/kie-upscale-queue and the `upscale` link npm makes in .bin.
    consumer = join(dir, 'consumer');
    mkdirSync(join(consumer, 'node_modules', '.bin'), { recursive: true });
    symlinkSync(app, join(consumer, 'node_modules', 'kie-upscale-queue'));
    symlinkSync(relative(join(consumer, 'node_modules', '.bin'), join(app, 'bin', 'upscale.js')), join(consumer, 'node_modules', '.bin', 'upscale'));
    env = { REDIS_URL: testRedisUrl(), UPSCALE_PREFIX: prefix, KIE_API_KEY: 'sk-signals', SHUTDOWN_TIMEOUT: '2s', LOG_LEVEL: 'info' };
  }, 60_000);

  afterAll(async () => {
    for (const p of processesUnder(dir ?? '/nonexistent')) process.kill(p.pid, 'SIGKILL');
    await deletePrefix(testRedisUrl(), prefix);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const cases: [string, () => string, string, RegExp][] = [
    ['./node_modules/.bin/upscale worker &', () => consumer, 'worker', /workers started/],
    ['./bin/upscale.js worker &', () => app, 'worker', /workers started/],
    ['exec ./node_modules/.bin/upscale serve --port 0 &', () => consumer, 'serve', /listening on/],
    ['./node_modules/.bin/upscale sim --port 0 &', () => consumer, 'sim', /simulator listening on/],
  ];

  it.each(cases)('`%s`: kill -TERM $! stops the real process, exit 0, nothing left running', async (line, cwd, _command, ready) => {
    const started = await startDocumented(line, cwd(), env, ready);
    const cmd = readFileSync(`/proc/${started.pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    expect(cmd, '$! is the node process itself, not a wrapper').toMatch(/^node .*upscale(\.js)? /);
    const sentAt = Date.now();
    process.kill(started.pid, 'SIGTERM');
    expect(await started.shellExit, started.output().slice(-1000)).toBe(0); // `wait` returns the command's status
    expect(Date.now() - sentAt).toBeLessThan(parseDuration('2s') + EXIT_MARGIN_MS + 2000);
    expect(alive(started.pid)).toBe(false);
    expect(processesUnder(dir)).toEqual([]);
  }, 120_000);
});

/** The README's fenced code blocks (```...```), each with the line it starts at. */
function codeBlocks(markdown: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  const lines = markdown.split('\n');
  let start = -1;
  for (const [i, l] of lines.entries()) {
    if (!l.startsWith('```')) continue;
    if (start < 0) start = i;
    else {
      out.push({ line: start + 1, text: lines.slice(start + 1, i).join('\n') });
      start = -1;
    }
  }
  return out;
}

describe('the README never tells people to start a long-running command through npm', () => {
  // A wrapper (npx, npm exec, npm run) between the shell and `upscale` does not pass SIGTERM on (trial of issues
  // 10/14, item C: "Running a long batch" said `npx upscale worker & npx upscale worker &`).
  const WRAPPED = /\b(npx|npm\s+exec|npm\s+run|pnpm|yarn)(\s+--?[\w-]+)*\s+(--\s+)?upscale\s+(worker|serve|sim|demo)\b/;

  it('no code block runs worker, serve, sim or demo through npx / npm exec / npm run', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const found = codeBlocks(readme).flatMap((b) => b.text.split('\n').map((l, i) => ({ at: b.line + i + 1, l }))).filter(({ l }) => WRAPPED.test(l));
    expect(found.map(({ at, l }) => `README.md:${at}: ${l.trim()}`)).toEqual([]);
  });

  it('in prose, the wrapped form appears only where the README warns against it', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const prose = readme.split('\n').map((l, i) => ({ at: i + 1, l })).filter(({ l }) => WRAPPED.test(l) && !/\b(not|never)\b/i.test(l.slice(0, l.search(WRAPPED))));
    expect(prose.map(({ at, l }) => `README.md:${at}: ${l.trim()}`)).toEqual([]);
  });

  it('the trial sample line is recognised as wrapped (the check is not vacuous)', () => {
    expect(WRAPPED.test('npx upscale worker &  npx upscale worker &                          # two or more')).toBe(true);
    expect(WRAPPED.test('KIE_API_KEY=sk-demo npx upscale sim --port 8790 --time-scale 10')).toBe(true);
    expect(WRAPPED.test('./bin/upscale.js worker &  ./bin/upscale.js worker &')).toBe(false);
  });
});

describe('container files deliver SIGTERM to the process', () => {
  it('the Dockerfile ENTRYPOINT and CMD are exec form (JSON arrays) running node directly', () => {
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    const entry = /^ENTRYPOINT\s+(.+)$/m.exec(dockerfile)?.[1] ?? '';
    expect(JSON.parse(entry)).toEqual(['node', 'bin/upscale.js']);
    const cmd = /^CMD\s+(.+)$/m.exec(dockerfile)?.[1] ?? '';
    expect(Array.isArray(JSON.parse(cmd))).toBe(true);
  });

  it('every compose command and entrypoint is a list (no sh -c), and workers get longer than their drain', () => {
    const { services } = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
      services: Record<string, { command?: unknown; entrypoint?: unknown; stop_grace_period?: string; environment?: Record<string, string> }>;
    };
    for (const [name, s] of Object.entries(services)) {
      for (const field of ['command', 'entrypoint'] as const) {
        if (s[field] === undefined) continue;
        expect(Array.isArray(s[field]), `${name}.${field}`).toBe(true);
        expect((s[field] as string[]).slice(0, 2), `${name}.${field}`).not.toEqual(['sh', '-c']);
      }
    }
    const worker = services.worker!;
    const drain = parseDuration(/:-([^}]+)\}/.exec(worker.environment?.SHUTDOWN_TIMEOUT ?? '')?.[1] ?? '30s');
    expect(parseDuration(worker.stop_grace_period ?? '10s')).toBeGreaterThan(drain + EXIT_MARGIN_MS);
  });
});
