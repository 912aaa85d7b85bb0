import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type * as V8 from 'node:v8';
import { afterEach, describe, expect, it, vi } from 'vitest';

const MiB = 1024 * 1024;
const setFlagsFromString = vi.fn();
/** The young generation's size the mocked V8 reports (bytes of new_space). */
let youngBytes = 32 * MiB;
vi.mock('node:v8', async (importOriginal) => {
  const real = await importOriginal<typeof V8>();
  return {
    ...real,
    setFlagsFromString,
    getHeapSpaceStatistics: () => real.getHeapSpaceStatistics().map((s) => (s.space_name === 'new_space' ? { ...s, space_size: youngBytes } : s)),
  };
});

const { applyHeapFlags, HEAP_FLAGS } = await import('../../src/cli/heap.js');

describe('V8 heap flags per command (src/cli/heap.ts)', () => {
  afterEach(() => {
    setFlagsFromString.mockClear();
    youngBytes = 32 * MiB;
  });

  it('upscale worker: the old generation grows by 50 % of the live size, and a young generation at its cap stops growing', () => {
    applyHeapFlags('worker');
    expect(setFlagsFromString.mock.calls).toEqual([['--heap-growing-percent=50'], ['--semi-space-growth-factor=1']]);
    expect(HEAP_FLAGS.worker?.youngGenerationBytes).toBe(16 * MiB);
  });

  it('upscale worker: a young generation below its cap may still grow (the GC observer stops it at the cap)', () => {
    youngBytes = 2 * MiB;
    applyHeapFlags('worker');
    expect(setFlagsFromString.mock.calls).toEqual([['--heap-growing-percent=50']]);
  });

  it('upscale enqueue: only the growing factor (V8 sizes its young generation: a small one slows parsing)', () => {
    applyHeapFlags('enqueue');
    expect(setFlagsFromString.mock.calls).toEqual([['--heap-growing-percent=100']]);
  });

  it("a flag node's command line sets is left to it, in either spelling", () => {
    applyHeapFlags('worker', ['--heap_growing_percent=80']);
    expect(setFlagsFromString.mock.calls).toEqual([['--semi-space-growth-factor=1']]);
    for (const young of ['--semi-space-growth-factor=2', '--max-semi-space-size=4', '--min_semi_space_size=2']) {
      setFlagsFromString.mockClear();
      applyHeapFlags('worker', [young, '--heap-growing-percent=20']);
      expect(setFlagsFromString, young).not.toHaveBeenCalled();
    }
    setFlagsFromString.mockClear();
    applyHeapFlags('worker', ['--heap-growing-percentile=1', '--enable-source-maps']);
    expect(setFlagsFromString).toHaveBeenCalledTimes(2);
  });

  it.each([['status'], ['serve'], ['sim'], ['constructor'], ['__proto__'], [undefined]])('%s keeps V8 defaults', (command) => {
    applyHeapFlags(command);
    expect(setFlagsFromString).not.toHaveBeenCalled();
  });

  it('every entry is a flag V8 of this Node knows (an unknown flag would be ignored with a warning)', () => {
    const known = execFileSync(process.execPath, ['--v8-options'], { encoding: 'utf8' });
    expect(known).toContain('--heap-growing-percent');
    expect(known).toContain('--semi-space-growth-factor');
    for (const f of Object.values(HEAP_FLAGS)) expect(f.growingPercent).toBeGreaterThan(0);
  });
});

describe('the young generation cap in a real V8 (a child process)', () => {
  /** Churns short-lived objects with a few thousand alive, yielding to the event loop as a worker between I/O does; prints new_space's bytes. */
  const churn = (cap: boolean) => `
    import { capYoungGeneration, youngGenerationBytes } from ${JSON.stringify(fileURLToPath(new URL('../../src/cli/heap.ts', import.meta.url)))};
    const start = youngGenerationBytes();
    if (${cap}) capYoungGeneration(8 * 1024 * 1024);
    let keep = [];
    for (let i = 0; i < 3e6; i++) {
      keep.push({ i, s: 'x' + i });
      if (keep.length > 5000) { keep = []; await new Promise((r) => setImmediate(r)); }
    }
    await new Promise((r) => setTimeout(r, 20));
    console.log(JSON.stringify({ start, end: youngGenerationBytes() }));`;
  const run = (cap: boolean) =>
    JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', churn(cap)], { encoding: 'utf8' })) as { start: number; end: number };

  it('grows from its start-up size to the cap and stops there; without the cap V8 grows it past', () => {
    const capped = run(true);
    expect(capped.start).toBeLessThan(8 * MiB);
    expect(capped.end).toBe(8 * MiB);
    expect(run(false).end).toBeGreaterThan(8 * MiB);
  }, 60_000);
});
