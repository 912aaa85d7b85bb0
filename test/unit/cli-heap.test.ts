import type * as V8 from 'node:v8';
import { afterEach, describe, expect, it, vi } from 'vitest';

const setFlagsFromString = vi.fn();
vi.mock('node:v8', async (importOriginal) => ({ ...(await importOriginal<typeof V8>()), setFlagsFromString }));

const { applyHeapFlags, HEAP_FLAGS } = await import('../../src/cli/heap.js');

describe('V8 heap flags per command (src/cli/heap.ts)', () => {
  afterEach(() => setFlagsFromString.mockClear());

  it('upscale worker: the old generation grows by 50 % of the live size and the young generation keeps its start-up size', () => {
    applyHeapFlags('worker');
    expect(setFlagsFromString.mock.calls).toEqual([['--heap-growing-percent=50'], ['--semi-space-growth-factor=1']]);
  });

  it('upscale enqueue: only the growing factor (a small young generation would slow parsing)', () => {
    applyHeapFlags('enqueue');
    expect(setFlagsFromString.mock.calls).toEqual([['--heap-growing-percent=100']]);
  });

  it("a flag node's command line sets is left to it, in either spelling", () => {
    applyHeapFlags('worker', ['--heap_growing_percent=80']);
    expect(setFlagsFromString.mock.calls).toEqual([['--semi-space-growth-factor=1']]);
    setFlagsFromString.mockClear();
    applyHeapFlags('worker', ['--semi-space-growth-factor=2', '--heap-growing-percent=20']);
    expect(setFlagsFromString).not.toHaveBeenCalled();
    setFlagsFromString.mockClear();
    applyHeapFlags('worker', ['--heap-growing-percentile=1', '--enable-source-maps']);
    expect(setFlagsFromString).toHaveBeenCalledTimes(2);
  });

  it.each([['status'], ['serve'], ['sim'], ['constructor'], ['__proto__'], [undefined]])('%s keeps V8 defaults', (command) => {
    applyHeapFlags(command);
    expect(setFlagsFromString).not.toHaveBeenCalled();
  });

  it('every entry is a flag V8 of this Node knows (an unknown flag would be ignored with a warning)', async () => {
    const { execFileSync } = await import('node:child_process');
    const known = execFileSync(process.execPath, ['--v8-options'], { encoding: 'utf8' });
    expect(known).toContain('--heap-growing-percent');
    expect(known).toContain('--semi-space-growth-factor');
    for (const f of Object.values(HEAP_FLAGS)) expect(f.growingPercent).toBeGreaterThan(0);
  });
});
