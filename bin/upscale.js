#!/usr/bin/env node
// The `upscale` command: runs the compiled CLI (built by `npm ci` / `npm run build` through `prepare`).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = fileURLToPath(new URL('../dist/cli/index.js', import.meta.url));
if (!existsSync(compiled)) {
  console.error('upscale: dist/ is missing. Run `npm run build` (or `npm ci`, which builds) first.');
  process.exit(1);
}
const { main } = await import(compiled);
await main();
