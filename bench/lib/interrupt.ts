/**
 * What an interrupted benchmark (Ctrl-C, SIGTERM) still does: the rigs register how to tear themselves down (kill
 * their processes, stop the simulator and the private redis-server, remove their temporary folders), and the first
 * signal runs every registered teardown, newest first, then exits 130. Without it a Ctrl-C left `kie-catalogue-*`,
 * `kie-redis-*` (the AOF, 20-27 MB) and `kie-sim-*` folders in /tmp each time (the fresh-user trial of issue 18).
 * A second signal exits at once; a teardown that hangs is given up after `GIVE_UP_MS`.
 */
type Teardown = () => unknown;

const teardowns = new Set<Teardown>();
/** The most the teardowns may take before the process exits anyway (ms). */
export const GIVE_UP_MS = 15_000;
let installed = false;

/** Registers `teardown` for an interrupt; returns the function that unregisters it (call it once torn down normally). */
export function onInterrupt(teardown: Teardown): () => void {
  teardowns.add(teardown);
  return () => {
    teardowns.delete(teardown);
  };
}

/** Installs the SIGINT/SIGTERM handlers (once); `say` reports what happens. */
export function installInterruptHandlers(say: (message: string) => void): void {
  if (installed) return;
  installed = true;
  let interrupted = false;
  const handle = (signal: NodeJS.Signals) => {
    if (interrupted) process.exit(130);
    interrupted = true;
    say(`${signal}: stopping the run's processes and removing its temporary folders (a second ${signal} exits at once)`);
    const all = [...teardowns].reverse().map((t) => Promise.resolve().then(t).catch(() => undefined));
    const giveUp = new Promise((resolve) => setTimeout(resolve, GIVE_UP_MS).unref());
    void Promise.race([Promise.all(all), giveUp]).then(() => process.exit(130));
  };
  process.on('SIGINT', handle);
  process.on('SIGTERM', handle);
}
