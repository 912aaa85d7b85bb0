/**
 * The JavaScript the measured processes run. Production runs the compiled CLI (`bin/upscale.js` → `dist/`), so the
 * benchmark transpiles `src/` and `bench/` (TypeScript's `transpileModule`, no type check: `npm run typecheck`
 * does that) into `node_modules/.cache/kie-bench-dist/` and spawns plain `node` on it. Under tsx every process
 * would carry tsx's loader thread and its esbuild service as well: about 40 MB of RSS and a second or two of CPU
 * at start that a deployment does not have. `--runner tsx` measures that way instead.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/** Per checkout (a copy of the tree that shares node_modules gets its own). */
export const DIST = `node_modules/.cache/kie-bench-dist/${createHash('sha1').update(fileURLToPath(new URL('../..', import.meta.url))).digest('hex').slice(0, 8)}`;

function* tsFiles(dir: string, skip: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (p === skip || name === 'node_modules') continue;
    if (statSync(p).isDirectory()) yield* tsFiles(p, skip);
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) yield p;
  }
}

/** Transpiles src/ and bench/ under `root` into `root/DIST`; returns the number of files. */
export function buildDist(root: string): number {
  const out = join(root, DIST);
  rmSync(out, { recursive: true, force: true });
  let count = 0;
  for (const top of ['src', 'bench']) {
    for (const file of tsFiles(join(root, top), join(root, 'bench/results'))) {
      const { outputText } = ts.transpileModule(readFileSync(file, 'utf8'), {
        fileName: file,
        compilerOptions: {
          module: ts.ModuleKind.ESNext,
          target: ts.ScriptTarget.ES2022,
          verbatimModuleSyntax: true,
          esModuleInterop: true,
          sourceMap: false,
        },
      });
      const target = join(out, relative(root, file)).replace(/\.ts$/, '.js');
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, outputText);
      count++;
    }
  }
  // ESM needs a package.json with "type": "module" above the files; the version feeds the User-Agent.
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
  writeFileSync(join(out, 'package.json'), JSON.stringify({ type: 'module', version: pkg.version }) + '\n');
  return count;
}
