/**
 * Keeps a long-running worker's RSS near its live heap. V8 sizes its heap from the machine's memory (about 4 GB
 * of old space on a 24 GB host) and collects lazily, so a worker cycling through 10,000 parked tasks grows to
 * ~200 MB of RSS while ~30 MB is live. Heap limits cannot be lowered after start-up (`--max-old-space-size` only
 * works on the command line or in NODE_OPTIONS), so instead, every `intervalMs`, when the heap has grown past
 * `minHeapBytes`, one full collection is forced and V8 gives the freed pages back.
 *
 * A full collection of a ~30 MB live heap takes tens of milliseconds; with the defaults it runs at most every 3 s
 * (under 1 % of a core), and never while the heap is small. `global.gc` comes from `--expose-gc` when given, else from V8 at run time
 * (`v8.setFlagsFromString('--expose-gc')` and a fresh context), as Node's documentation of `setFlagsFromString` shows.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export interface HeapTrimOptions {
  /** Between two looks at the heap, ms. @defaultValue 3000 */
  intervalMs?: number;
  /** Below this heap size nothing is done, bytes. @defaultValue 64 MiB */
  minHeapBytes?: number;
}

function gcFunction(): () => void {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (existing) return existing;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** Starts the trimmer (its timer does not keep the process alive); returns a function that stops it. */
export function startHeapTrim(options: HeapTrimOptions = {}): () => void {
  const intervalMs = options.intervalMs ?? 3000;
  const minHeapBytes = options.minHeapBytes ?? 64 * 1024 * 1024;
  const gc = gcFunction();
  const timer = setInterval(() => {
    if (process.memoryUsage().heapTotal > minHeapBytes) gc();
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
