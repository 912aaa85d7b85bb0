import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as lib from '../../src/index.js';

describe('the package entry (src/index.ts)', () => {
  it('exports the library the commands are made of', () => {
    for (const name of ['loadConfig', 'createRuntime', 'enqueue', 'enqueueFile', 'startWorkers', 'pause', 'resume', 'retry', 'cancel', 'getStatus', 'exportBatch', 'buildApp', 'KieClient', 'ResultStore'] as const) {
      expect(typeof lib[name], name).toBe('function');
    }
  });

  it('keeps the simulator out of it (a separate ./sim entry)', () => {
    const source = readFileSync(new URL('../../src/index.ts', import.meta.url), 'utf8');
    expect(source).not.toMatch(/from '\.\/sim\//);
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { exports: Record<string, { import: string }> };
    expect(pkg.exports['.']!.import).toBe('./dist/index.js');
    expect(pkg.exports['./sim']!.import).toBe('./dist/sim/index.js');
  });
});
