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
 * - The young generation is capped: V8 doubles its two semi-spaces from 1 MB each up to 16 MB as allocation goes on,
 *   and every page stays resident (32 MB of RSS for a few MB of short-lived objects), while each doubling halves the
 *   number of scavenges. `--max-semi-space-size` only works on node's command line (V8 sizes the heap when the
 *   process starts), so the cap is kept the way the growing factor is: a GC observer watches the young generation
 *   and sets `--semi-space-growth-factor=1` (no more growth) once it has reached `youngGenerationBytes`, then stops
 *   watching. A young generation never shrinks back, so the observer starts before anything else allocates.
 *
 * Not forced collections: the worker used to call `gc()` whenever its heap in use had grown 8 MiB. Each took ~50 ms
 * of CPU and left V8's own trigger at the live size, so V8 then collected far more often by itself; under load
 * (bench scenario 2, ~100 images/s) that worker spent 14 ms of CPU per image, this one 9.6 ms, at the same peak RSS
 * (124 and 125 MB). Measured on 2 cores (bench scenarios 2-4, one run each, 2026-11-30):
 * - `upscale worker`, 10,000 tasks in flight (scenario 4): peak RSS 193 MB with V8's defaults; with the growing
 *   factor, 127 MB with the young generation kept at its start-up 2 MB, 132 MB with it capped at 16 MB, 149 MB with
 *   V8's 32 MB. Under load (scenario 2, interleaved runs on one machine) the worker spent 4.2–5.1 ms of CPU per
 *   image at 2 MB (mean 4.6; its profile 12 % in the collector) and 4.0–4.7 ms at 16 MB (mean 4.3), so the worker's
 *   young generation stops growing at 16 MB.
 * - `upscale enqueue`, 100,000 lines (scenario 3): peak RSS 235 MB → 180 MB at 100 %, the rate the same within the
 *   run-to-run noise (CPU +15 %); 50 % gave 160 MB at 9 % fewer lines per second, so enqueue keeps 100.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';

const MiB = 1024 * 1024;

/**
 * V8 flags per command: the growing factor over the live size in percent, and the young generation's cap (bytes of
 * V8's `new_space`, both semi-spaces; null for V8's own 32 MB).
 */
export const HEAP_FLAGS: Readonly<Record<string, { growingPercent: number; youngGenerationBytes: number | null }>> = {
  worker: { growingPercent: 50, youngGenerationBytes: 16 * MiB },
  enqueue: { growingPercent: 100, youngGenerationBytes: null },
};

/** Flags of node's command line that size the young generation themselves. */
const YOUNG_GENERATION_FLAGS = ['--semi-space-growth-factor', '--max-semi-space-size', '--min-semi-space-size'];

/** Bytes of V8's young generation now (`new_space`: both semi-spaces). */
export function youngGenerationBytes(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
}

/**
 * Stops the young generation's growth once it holds `capBytes` (at once if it already does): V8 grows it by
 * doubling at a scavenge, and after each collection the observer compares its size with the cap. Returns a function
 * that stops watching (for tests; the watch ends by itself at the cap).
 */
export function capYoungGeneration(capBytes: number): () => void {
  const stopGrowing = () => setFlagsFromString('--semi-space-growth-factor=1');
  if (youngGenerationBytes() >= capBytes) {
    stopGrowing();
    return () => undefined;
  }
  const observer = new PerformanceObserver(() => {
    if (youngGenerationBytes() < capBytes) return;
    stopGrowing();
    observer.disconnect();
  });
  observer.observe({ entryTypes: ['gc'] });
  return () => observer.disconnect();
}

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
  if (flags.youngGenerationBytes !== null && !YOUNG_GENERATION_FLAGS.some((f) => givenOnCommandLine(execArgv, f))) capYoungGeneration(flags.youngGenerationBytes);
}

applyHeapFlags(process.argv[2]);
