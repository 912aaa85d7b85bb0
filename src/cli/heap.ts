/**
 * How V8 sizes the heap of the long-lived or memory-heavy commands, decided before anything else allocates
 * (imported first by src/cli/index.ts, ahead of commander and zod). Other commands keep V8's defaults.
 *
 * RSS is V8's lazy heap, not what the process keeps: after each full collection V8 sets the next one's trigger at
 * the live size times a growing factor it picks from the mutator's speed, up to 4, and sizes its old space from the
 * machine's memory (about 4 GB on a 24 GB host). So a worker cycling through 10,000 parked tasks grew to ~190 MB of
 * RSS with ~30 MB live, and `upscale enqueue` of 100,000 lines to ~235 MB. Two V8 flags bound that, set here:
 *
 * - `--heap-growing-percent` fixes the growing factor (50 → the next full collection at 1.5× the live size). It is
 *   read at every collection, so unlike `--max-old-space-size` (command line or NODE_OPTIONS only, and a hard limit
 *   that would turn a big batch into an out-of-memory crash) it works when set at run time.
 * - `--semi-space-growth-factor=1` keeps the young generation at its start-up size (1 MB semi-spaces): V8 grows
 *   them to 16 MB each as allocation goes on, and every page stays resident (32 MB of RSS for a few MB of
 *   short-lived objects). A grown young generation does not shrink back, hence "before anything else allocates".
 *
 * Not forced collections: the worker used to call `gc()` whenever its heap in use had grown 8 MiB. Each took ~50 ms
 * of CPU and left V8's own trigger at the live size, so V8 then collected far more often by itself; under load
 * (bench scenario 2, ~100 images/s) that worker spent 14 ms of CPU per image, this one 9.6 ms, at the same peak RSS
 * (124 and 125 MB). Measured on 2 cores (bench scenarios 2-4, one run each, 2026-11-30):
 * - `upscale worker`, 10,000 tasks in flight (scenario 4): peak RSS 193 MB with V8's defaults, 128 MB with both flags.
 * - `upscale enqueue`, 100,000 lines (scenario 3): peak RSS 235 MB → 180 MB at 100 %, the rate the same within the
 *   run-to-run noise (CPU +15 %); 50 % gave 160 MB at 9 % fewer lines per second, so enqueue keeps 100.
 */
import { setFlagsFromString } from 'node:v8';

/** V8 flags per command: the growing factor over the live size in percent, and whether the young generation stays small. */
export const HEAP_FLAGS: Readonly<Record<string, { growingPercent: number; smallYoungGeneration: boolean }>> = {
  worker: { growingPercent: 50, smallYoungGeneration: true },
  enqueue: { growingPercent: 100, smallYoungGeneration: false },
};

/** Whether node's command line (`execArgv`) sets V8 flag `name` itself (V8 reads `-` and `_` alike). */
function givenOnCommandLine(execArgv: readonly string[], name: string): boolean {
  const wanted = name.replace(/_/g, '-');
  return execArgv.some((a) => a.replace(/_/g, '-').split('=')[0] === wanted);
}

/**
 * Sets the V8 flags of `command` (nothing for a command without an entry), except any that node's own command line
 * already sets (`node --heap-growing-percent=80 bin/upscale.js worker`): the operator's value stands.
 */
export function applyHeapFlags(command: string | undefined, execArgv: readonly string[] = process.execArgv): void {
  const flags = command !== undefined && Object.hasOwn(HEAP_FLAGS, command) ? HEAP_FLAGS[command] : undefined;
  if (!flags) return;
  if (!givenOnCommandLine(execArgv, '--heap-growing-percent')) setFlagsFromString(`--heap-growing-percent=${flags.growingPercent}`);
  if (flags.smallYoungGeneration && !givenOnCommandLine(execArgv, '--semi-space-growth-factor')) setFlagsFromString('--semi-space-growth-factor=1');
}

applyHeapFlags(process.argv[2]);
