/** The project's own source lines, for tests that hold a house rule over every file (durations, counts). */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ROOT } from './processes.js';

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/**
 * Every line of code under `src/` (comment lines, `//` or a doc comment's `*`, left out), with where it is
 * (`src/dir/file.ts:LINE`). `skip` leaves out files by their path relative to the project root.
 */
export function sourceCodeLines(skip: (rel: string) => boolean = () => false): { where: string; text: string }[] {
  const out: { where: string; text: string }[] = [];
  for (const file of sources(join(ROOT, 'src'))) {
    const rel = relative(ROOT, file);
    if (skip(rel)) continue;
    for (const [i, text] of readFileSync(file, 'utf8').split('\n').entries()) {
      if (!/^\s*(\/\/|\*)/.test(text)) out.push({ where: `${rel}:${i + 1}`, text });
    }
  }
  return out;
}
