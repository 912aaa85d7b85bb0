/**
 * The processes of a chaos run or a catalogue benchmark: `upscale serve` and N `upscale worker`s, spawned for real.
 * Every process is kept (killed ones too) with how it ended, so a run can prove that nothing died except by its own
 * hand, and every process' output is kept for the secrets and error checks.
 *
 * How a process is spawned is the caller's: the tests' `spawnUpscale` (tsx, output in memory) by default, or the
 * benchmark's (bench/lib/procs.ts: transpiled JavaScript, peak RSS and CPU sampled, logs to files).
 */
import type { ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { spawnUpscale } from './processes.js';
import { waitFor } from './wait.js';

/** What the fleet needs of a spawned `upscale` process. */
export interface FleetChild {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawns `upscale <args>` for `role` (worker `slot`, 0 for serve); `name` is unique per process (`worker2-1`). */
export type FleetSpawner<P extends FleetChild> = (name: string, args: string[], env: Record<string, string>) => P;

export interface FleetProc<P extends FleetChild = FleetChild> {
  readonly role: 'serve' | 'worker';
  /** worker slot (0..N-1); every restart of a slot is a new FleetProc. */
  readonly slot: number;
  readonly proc: P;
  /** Set when the run itself killed it (SIGKILL) or stopped it (SIGTERM at the end). */
  endedByTest: 'SIGKILL' | 'SIGTERM' | null;
  exit: { code: number | null; signal: NodeJS.Signals | null } | null;
}

export interface Fleet<P extends FleetChild = FleetChild> {
  readonly procs: FleetProc<P>[];
  /** The serve URL (PUBLIC_BASE_URL of the workers). */
  readonly serveUrl: string;
  /** The live worker of each slot. */
  worker(slot: number): FleetProc<P>;
  /** SIGKILLs the worker in `slot`, waits for its end, and starts a fresh one in its place. */
  killAndRestart(slot: number): Promise<void>;
  /** Processes that ended without the run ending them (must be none). */
  unexpectedExits(): FleetProc<P>[];
  /** SIGTERM to every live process; resolves with those that did not exit 0. */
  stopAll(): Promise<FleetProc<P>[]>;
  /** Every process' stdout and stderr, concatenated. */
  allOutput(): string;
  /** Writes each process' output to `dir` (for a post-mortem). */
  dump(dir: string): Promise<void>;
}

function track<P extends FleetChild>(role: FleetProc['role'], slot: number, proc: P): FleetProc<P> {
  const fp: FleetProc<P> = { role, slot, proc, endedByTest: null, exit: null };
  void proc.exited.then((e) => (fp.exit = { code: e.code, signal: e.signal }));
  return fp;
}

async function started(fp: FleetProc<FleetChild>, marker: (p: FleetChild) => boolean, what: string): Promise<void> {
  await waitFor(() => marker(fp.proc) || fp.exit !== null, { timeoutMs: 60_000, intervalMs: 50, what });
  if (fp.exit !== null) throw new Error(`${what}: exited ${JSON.stringify(fp.exit)}\n${fp.proc.stderr().slice(-4000)}`);
}

const testSpawner: FleetSpawner<FleetChild> = (_name, args, env) => spawnUpscale(args, env);

/**
 * Starts `upscale serve` (with `serveArgs`) and `workers` workers (`upscale worker ...workerArgs`) pointed at it
 * (PUBLIC_BASE_URL = its address). `spawner` defaults to the tests' (tsx).
 */
export async function startFleet<P extends FleetChild = FleetChild>(
  env: Record<string, string>,
  workers: number,
  serveArgs: string[] = [],
  spawner: FleetSpawner<P> = testSpawner as unknown as FleetSpawner<P>,
  workerArgs: string[] = [],
): Promise<Fleet<P>> {
  const procs: FleetProc<P>[] = [];
  const serve = track('serve', 0, spawner('serve', ['serve', '--port', '0', ...serveArgs], env));
  procs.push(serve);
  await started(serve, (p) => /listening on (http:\/\/\S+)/.test(p.stdout()), 'upscale serve');
  const serveUrl = (/listening on (http:\/\/\S+)/.exec(serve.proc.stdout()) as RegExpExecArray)[1] as string;
  const workerEnv = { ...env, PUBLIC_BASE_URL: serveUrl };
  const live = new Map<number, FleetProc<P>>();
  const starts = new Map<number, number>();

  async function startWorker(slot: number): Promise<FleetProc<P>> {
    const n = (starts.get(slot) ?? 0) + 1;
    starts.set(slot, n);
    const fp = track('worker', slot, spawner(`worker${slot}-${n}`, ['worker', ...workerArgs], workerEnv));
    procs.push(fp);
    live.set(slot, fp);
    await started(fp, (p) => p.stderr().includes('workers started'), `worker ${slot}`);
    return fp;
  }
  try {
    await Promise.all(Array.from({ length: workers }, (_, slot) => startWorker(slot)));
  } catch (e) {
    for (const p of procs) p.proc.child.kill('SIGKILL');
    throw e;
  }

  const alive = (fp: FleetProc<P>) => fp.exit === null && fp.proc.child.exitCode === null && fp.proc.child.signalCode === null;
  const end = async (fp: FleetProc<P>, signal: NodeJS.Signals) => {
    if (alive(fp)) fp.proc.child.kill(signal);
    return fp.proc.exited;
  };
  return {
    procs,
    serveUrl,
    worker: (slot) => live.get(slot) as FleetProc<P>,
    async killAndRestart(slot) {
      const fp = live.get(slot) as FleetProc<P>;
      fp.endedByTest = 'SIGKILL';
      await end(fp, 'SIGKILL');
      await startWorker(slot);
    },
    unexpectedExits: () => procs.filter((fp) => fp.endedByTest === null && !alive(fp)),
    async stopAll() {
      const stopping = procs.filter(alive);
      for (const fp of stopping) fp.endedByTest = 'SIGTERM';
      const ends = await Promise.all(stopping.map((fp) => end(fp, 'SIGTERM')));
      return stopping.filter((_, i) => ends[i]?.code !== 0);
    },
    allOutput: () => procs.map((fp) => fp.proc.stdout() + fp.proc.stderr()).join('\n'),
    async dump(dir) {
      await Promise.all(
        procs.map((fp, i) =>
          writeFile(join(dir, `${String(i).padStart(2, '0')}-${fp.role}${fp.slot}.log`), `${JSON.stringify(fp.exit)}\n${fp.proc.stdout()}\n${fp.proc.stderr()}`),
        ),
      );
    },
  };
}
