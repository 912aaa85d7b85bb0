/**
 * Keeps a long-running worker's RSS near its live heap (~30 MB with 10,000 tasks parked). Two parts:
 *
 * - The young generation. V8 grows its semi-spaces from 1 MB to 16 MB each as allocation goes on, and every page
 *   of them stays resident: 32 MB of RSS for a few MB of short-lived objects. {@link keepYoungGenerationSmall}
 *   stops that growth (`--semi-space-growth-factor=1`); it must run before the process has allocated much (a grown
 *   young generation does not shrink back), so `upscale worker` calls it first thing (src/cli/worker-heap.ts).
 * - The old generation. V8 sizes its heap from the machine's memory (about 4 GB of old space on a 24 GB host) and
 *   collects lazily, so a worker cycling through 10,000 parked tasks grows to ~200 MB of RSS while ~30 MB is live
 *   (more so with a small young generation, which promotes more short-lived objects). Heap limits cannot be
 *   lowered after start-up (`--max-old-space-size` only works on the command line or in NODE_OPTIONS), so instead,
 *   every `intervalMs`, once the heap in use has grown `growthBytes` past what the last forced collection left
 *   (and past `minHeapBytes`), one full collection is forced and V8 gives the freed pages back.
 *
 * A full collection of a ~30 MB live heap takes tens of milliseconds; it runs at most once per `intervalMs` and per
 * `growthBytes` of growth, and never while the heap is small. Measured with bench scenario 4 (10,000 in flight,
 * one worker): young generation 32 MB → 8 MB (frozen at the size it had reached, 2 or 8 MB), V8 heap ≤ 49 MB
 * instead of 64–73 MB, peak RSS 123 MB instead of 149 MB. `global.gc` comes from `--expose-gc` when given, else
 * from V8 at run time (`v8.setFlagsFromString('--expose-gc')` and a fresh context), as Node's documentation of
 * `setFlagsFromString` shows.
 */
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export interface HeapTrimOptions {
  /** Between two looks at the heap, ms. @defaultValue 1000 */
  intervalMs?: number;
  /** Below this much heap in use nothing is done, bytes. @defaultValue 32 MiB */
  minHeapBytes?: number;
  /** Growth of the heap in use past what the last forced collection left that forces the next one, bytes. @defaultValue 8 MiB */
  growthBytes?: number;
}

/**
 * Keeps V8's young generation (new space) at the size it has now, 1 MB semi-spaces at start-up, instead of growing
 * it to 16 MB each. Call it before anything else is loaded; later it only stops further growth.
 */
export function keepYoungGenerationSmall(): void {
  setFlagsFromString('--semi-space-growth-factor=1');
}

function gcFunction(): () => void {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (existing) return existing;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** Starts the trimmer (its timer does not keep the process alive); returns a function that stops it. */
export function startHeapTrim(options: HeapTrimOptions = {}): () => void {
  const intervalMs = options.intervalMs ?? 1000;
  const minHeapBytes = options.minHeapBytes ?? 32 * 1024 * 1024;
  const growthBytes = options.growthBytes ?? 8 * 1024 * 1024;
  const gc = gcFunction();
  let left = 0;
  const timer = setInterval(() => {
    const used = getHeapStatistics().used_heap_size;
    if (used <= minHeapBytes || used <= left + growthBytes) return;
    gc();
    left = getHeapStatistics().used_heap_size;
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
