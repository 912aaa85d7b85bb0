#!/usr/bin/env node
/**
 * `npm run demo`: the first command of the README. On a fresh clone it installs what it needs (`npm ci` when
 * node_modules is missing), then runs `upscale demo` from dist/ when dist is up to date with src/, else straight from
 * the TypeScript sources through tsx (or builds first when tsx is not installed). Arguments are passed on:
 * `npm run demo -- --keep`. The exit code is the demo's.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** @param {string} line */
const say = (line) => process.stdout.write(`demo: ${line}\n`);

/**
 * Runs a command in the repository. Returns true when it succeeded; with `mustSucceed`, exits on failure.
 * @param {string} cmd
 * @param {string[]} args
 * @param {boolean} [mustSucceed]
 */
function run(cmd, args, mustSucceed = true) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status === 0) return true;
  if (!mustSucceed) return false;
  process.stderr.write(`demo: \`${cmd} ${args.join(' ')}\` failed (exit ${r.status ?? r.signal}).\n`);
  process.exit(r.status ?? 1);
}

/**
 * Newest modification time of the files under `dir`.
 * @param {string} dir
 * @returns {number}
 */
function newest(dir) {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return latest;
}

if (!existsSync(join(root, 'node_modules'))) {
  say('installing dependencies (npm ci)...');
  // npm ci refuses a lock file that lacks optional packages the registry in use does not carry (e.g. a mirror
  // without other platforms' native builds); npm install skips those and installs the same versions.
  if (!run(npm, ['ci', '--no-audit', '--no-fund'], false)) {
    say('npm ci failed; trying npm install with the same lock file...');
    run(npm, ['install', '--no-audit', '--no-fund']);
  }
}

const compiled = join(root, 'dist', 'cli', 'index.js');
const fresh = existsSync(compiled) && statSync(compiled).mtimeMs >= newest(join(root, 'src'));
const hasTsx = existsSync(join(root, 'node_modules', 'tsx'));
/** @type {string[]} */
let args;
if (fresh) args = [compiled];
else if (hasTsx) args = ['--import', 'tsx', join(root, 'src', 'cli', 'index.ts')];
else {
  say('building (npm run build)...');
  run(npm, ['run', 'build']);
  args = [compiled];
}

const child = spawn(process.execPath, [...args, 'demo', ...process.argv.slice(2)], { stdio: 'inherit' });
// Ctrl-C reaches the demo directly (same process group); the demo cleans up and exits. Forward SIGTERM.
process.on('SIGINT', () => undefined);
process.on('SIGTERM', () => child.kill('SIGTERM'));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + 1 : 1)));
