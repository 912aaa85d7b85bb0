/**
 * The processes of a chaos run: `upscale serve` and N `upscale worker`s, spawned for real. Every process is kept
 * (killed ones too) with how it ended, so the test can prove that nothing died except by its own hand, and every
 * process' output is kept for the secrets and error checks.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { spawnUpscale, type Proc } from '../helpers/processes.js';
import { waitFor } from '../helpers/redis.js';

export interface FleetProc {
  readonly role: 'serve' | 'worker';
  /** worker slot (0..N-1); every restart of a slot is a new FleetProc. */
  readonly slot: number;
  readonly proc: Proc;
  /** Set when the test itself killed it (SIGKILL) or stopped it (SIGTERM at the end). */
  endedByTest: 'SIGKILL' | 'SIGTERM' | null;
  exit: { code: number | null; signal: NodeJS.Signals | null } | null;
}

export interface Fleet {
  readonly procs: FleetProc[];
  /** The serve URL (PUBLIC_BASE_URL of the workers). */
  readonly serveUrl: string;
  /** The live worker of each slot. */
  worker(slot: number): FleetProc;
  /** SIGKILLs the worker in `slot`, waits for its end, and starts a fresh one in its place. */
  killAndRestart(slot: number): Promise<void>;
  /** Processes that ended without the test ending them (must be none). */
  unexpectedExits(): FleetProc[];
  /** SIGTERM to every live process; resolves with those that did not exit 0. */
  stopAll(): Promise<FleetProc[]>;
  /** Every process' stdout and stderr, concatenated. */
  allOutput(): string;
  /** Writes each process' output to `dir` (for a post-mortem). */
  dump(dir: string): Promise<void>;
}

function track(role: FleetProc['role'], slot: number, proc: Proc): FleetProc {
  const fp: FleetProc = { role, slot, proc, endedByTest: null, exit: null };
  void proc.exited.then((e) => (fp.exit = e));
  return fp;
}

async function started(fp: FleetProc, marker: (p: Proc) => boolean, what: string): Promise<void> {
  await waitFor(() => marker(fp.proc) || fp.exit !== null, { timeoutMs: 60_000, intervalMs: 50, what });
  if (fp.exit !== null) throw new Error(`${what}: exited ${JSON.stringify(fp.exit)}\n${fp.proc.stderr()}`);
}

/** Starts `upscale serve` (callbacks only) and `workers` workers pointed at it. */
export async function startFleet(env: Record<string, string>, workers: number, serveArgs: string[] = []): Promise<Fleet> {
  const procs: FleetProc[] = [];
  const serve = track('serve', 0, spawnUpscale(['serve', '--port', '0', ...serveArgs], env));
  procs.push(serve);
  await started(serve, (p) => /listening on (http:\/\/\S+)/.test(p.stdout()), 'upscale serve');
  const serveUrl = (/listening on (http:\/\/\S+)/.exec(serve.proc.stdout()) as RegExpExecArray)[1] as string;
  const workerEnv = { ...env, PUBLIC_BASE_URL: serveUrl };
  const live = new Map<number, FleetProc>();

  async function startWorker(slot: number): Promise<FleetProc> {
    const fp = track('worker', slot, spawnUpscale(['worker'], workerEnv));
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

  const alive = (fp: FleetProc) => fp.exit === null && fp.proc.child.exitCode === null && fp.proc.child.signalCode === null;
  return {
    procs,
    serveUrl,
    worker: (slot) => live.get(slot) as FleetProc,
    async killAndRestart(slot) {
      const fp = live.get(slot) as FleetProc;
      fp.endedByTest = 'SIGKILL';
      await fp.proc.stop('SIGKILL');
      await startWorker(slot);
    },
    unexpectedExits: () => procs.filter((fp) => fp.endedByTest === null && !alive(fp)),
    async stopAll() {
      const stopping = procs.filter(alive);
      for (const fp of stopping) fp.endedByTest = 'SIGTERM';
      const ends = await Promise.all(stopping.map((fp) => fp.proc.stop('SIGTERM')));
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
