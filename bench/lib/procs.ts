/**
 * Spawning the processes a benchmark measures (`upscale` commands and standalone bench scripts, both through tsx,
 * as test/helpers/processes.ts does) and reading what they cost: peak RSS and CPU time.
 *
 * Every spawned process preloads `exit-report.ts`, which appends `{ pid, maxRssKb, userUs, systemUs }` from
 * `process.resourceUsage()` to BENCH_REPORT_FILE when it exits normally (SIGTERM drain, end of script). Beside
 * that, `/proc/<pid>/status` (VmHWM, VmRSS) and `/proc/<pid>/stat` (utime, stime) are sampled while it runs, so a
 * process that is killed still has figures.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { DIST } from './build.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLK_TCK = 100;

/** How spawned processes run: the transpiled JavaScript (as production runs dist/) or TypeScript through tsx. */
export type Runner = 'dist' | 'tsx';
let runner: Runner = 'tsx';

export function setRunner(r: Runner): void {
  runner = r;
}

export function getRunner(): Runner {
  return runner;
}

let profileDir: string | null = null;

/** Every measured process writes a V8 CPU profile (`--cpu-prof`) into `dir` when it exits normally. */
export function setProfileDir(dir: string | null): void {
  profileDir = dir;
}

/** `node` arguments that run `entry` (a .ts path under the repository) with the exit report preloaded. */
function nodeArgs(entry: string): string[] {
  const prof = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  if (runner === 'tsx') return [...prof, '--import', 'tsx', '--import', './bench/lib/exit-report.ts', entry];
  const js = (p: string) => `./${DIST}/${p.replace(/\.ts$/, '.js')}`;
  return [...prof, '--import', js('bench/lib/exit-report.ts'), js(entry)];
}

export interface Usage {
  /** Peak resident set size, bytes (VmHWM / getrusage maxrss). */
  peakRssBytes: number;
  /** User + system CPU, milliseconds. */
  cpuMs: number;
}

export interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly startedAt: number;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  /** Resolves when `text` appears on stdout or stderr (rejects when the process exits first or after `timeoutMs`). */
  waitForOutput(text: string, timeoutMs?: number): Promise<number>;
  /** Latest figures: from the exit report when the process exited normally, else from the last /proc sample. */
  usage(): Usage;
  /** Reads /proc now (null once the process is gone). */
  sampleNow(): Promise<Usage | null>;
  /** Sends `signal` (SIGTERM by default) and waits for the exit, SIGKILL after `graceMs`. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

/** `{ pid, maxRssKb, userUs, systemUs }` lines written by exit-report.ts. */
function readExitReport(file: string, pid: number): Usage | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  for (const line of text.split('\n')) {
    if (!line) continue;
    const r = JSON.parse(line) as { pid: number; maxRssKb: number; userUs: number; systemUs: number };
    if (r.pid === pid) return { peakRssBytes: r.maxRssKb * 1024, cpuMs: (r.userUs + r.systemUs) / 1000 };
  }
  return null;
}

/** VmHWM (peak RSS) and utime + stime of a running process, or null once it is gone. */
export async function sampleProc(pid: number): Promise<Usage | null> {
  try {
    const [status, stat] = await Promise.all([readFile(`/proc/${pid}/status`, 'utf8'), readFile(`/proc/${pid}/stat`, 'utf8')]);
    const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
    // Fields after the command name (which may hold spaces) start at ") ": utime and stime are fields 14 and 15.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(rest[11]) + Number(rest[12]);
    return { peakRssBytes: hwm ? Number(hwm[1]) * 1024 : 0, cpuMs: (ticks * 1000) / CLK_TCK };
  } catch {
    return null;
  }
}

export interface SpawnOptions {
  env?: Record<string, string>;
  /** Written to standard input, which is then closed. */
  input?: string;
  /** Where exit-report.ts appends its line. */
  reportFile: string;
  /** Sampling period of /proc. @defaultValue 250 ms */
  sampleMs?: number;
  /**
   * Standard error goes to this file instead of a pipe (as a service's log would), so reading a chatty worker's
   * log lines costs the benchmark's process nothing; `waitForOutput` then reads the file.
   */
  logFile?: string;
}

function spawnNode(name: string, entry: string, args: string[], o: SpawnOptions): Proc {
  const logFd = o.logFile ? openSync(o.logFile, 'a') : null;
  const child = spawn(process.execPath, [...nodeArgs(entry), ...args], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'warn', ...o.env, BENCH_REPORT_FILE: o.reportFile, FORCE_COLOR: '0' },
    stdio: ['pipe', 'pipe', logFd ?? 'pipe'],
  });
  if (logFd !== null) closeSync(logFd);
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not spawn ${name}`);
  const startedAt = Date.now();
  let out = '';
  let err = '';
  const readErr = () => {
    if (!o.logFile) return err;
    try {
      return readFileSync(o.logFile, 'utf8');
    } catch {
      return '';
    }
  };
  const waiters: { text: string; resolve: (at: number) => void }[] = [];
  const check = () => {
    const errNow = o.logFile && waiters.length ? readErr() : err;
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i]!;
      if (out.includes(w.text) || errNow.includes(w.text)) {
        waiters.splice(i, 1);
        w.resolve(Date.now());
      }
    }
  };
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
    if (waiters.length) check();
  });
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
    if (err.length > 4_000_000) err = err.slice(-1_000_000);
    if (waiters.length) check();
  });
  if (o.input !== undefined) child.stdin?.end(o.input);
  else child.stdin?.end();

  let last: Usage = { peakRssBytes: 0, cpuMs: 0 };
  const timer = setInterval(() => {
    void sampleProc(pid).then((u) => {
      if (u) last = { peakRssBytes: Math.max(last.peakRssBytes, u.peakRssBytes), cpuMs: Math.max(last.cpuMs, u.cpuMs) };
    });
  }, o.sampleMs ?? 250);
  timer.unref();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.on('exit', (code, signal) => {
      clearInterval(timer);
      resolve({ code, signal, at: Date.now() });
    }),
  );
  let done = false;
  void exited.then(() => (done = true));

  return {
    name,
    child,
    pid,
    startedAt,
    stdout: () => out,
    stderr: readErr,
    exited,
    waitForOutput(text, timeoutMs = 60_000) {
      return new Promise<number>((resolve, reject) => {
        let poller: NodeJS.Timeout | null = null;
        const t = setTimeout(() => {
          if (poller) clearInterval(poller);
          reject(new Error(`${name}: no "${text}" after ${timeoutMs} ms\n${readErr().slice(-2000)}`));
        }, timeoutMs);
        const w = {
          text,
          resolve: (at: number) => {
            clearTimeout(t);
            if (poller) clearInterval(poller);
            resolve(at);
          },
        };
        waiters.push(w);
        if (o.logFile) poller = setInterval(check, 100);
        void exited.then(({ code, signal }) => {
          clearTimeout(t);
          if (poller) clearInterval(poller);
          if (waiters.includes(w)) reject(new Error(`${name} exited (${code ?? signal}) before "${text}":\n${readErr().slice(-3000)}`));
        });
        check();
      });
    },
    sampleNow: () => sampleProc(pid),
    usage() {
      const report = done ? readExitReport(o.reportFile, pid) : null;
      if (!report) return last;
      return { peakRssBytes: Math.max(report.peakRssBytes, last.peakRssBytes), cpuMs: Math.max(report.cpuMs, last.cpuMs) };
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 20_000) {
      if (done) return;
      const u = await sampleProc(pid);
      if (u) last = { peakRssBytes: Math.max(last.peakRssBytes, u.peakRssBytes), cpuMs: Math.max(last.cpuMs, u.cpuMs) };
      child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    },
  };
}

/** `upscale <args>` as a real process (`node <dist>/src/cli/index.js`, or `node --import tsx src/cli/index.ts`). */
export function spawnUpscale(name: string, args: string[], o: SpawnOptions): Proc {
  return spawnNode(name, 'src/cli/index.ts', args, o);
}

/** A standalone bench script (e.g. bench/baselines/naive.ts) as a real process. */
export function spawnScript(name: string, script: string, args: string[], o: SpawnOptions): Proc {
  return spawnNode(name, script, args, o);
}

/** Stops every process given (SIGTERM, then SIGKILL after the grace period). */
export async function stopAll(procs: readonly Proc[], signal: NodeJS.Signals = 'SIGTERM', graceMs?: number): Promise<void> {
  await Promise.all(procs.map((p) => p.stop(signal, graceMs)));
}
