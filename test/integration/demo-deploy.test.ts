/**
 * There is no Docker engine here, so the deployment files are checked by reading them: docker-compose.yml's
 * services, the `upscale` commands and flags they run, the environment names they set (every one must be in the
 * config schema), and the Dockerfile's stages; its build command is run as plain shell into a temp folder laid out
 * like the image, and the image's ENTRYPOINT is run there.
 */
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Command } from 'commander';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { registerCommands } from '../../src/cli/commands/index.js';
import { CONFIG_KEYS } from '../../src/config/index.js';
import { ROOT } from '../helpers/processes.js';

const run = promisify(execFile);

interface Service {
  image?: string;
  build?: string;
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  profiles?: string[];
  container_name?: string;
  volumes?: string[];
}

async function compose(): Promise<{ services: Record<string, Service>; volumes: Record<string, unknown> }> {
  return parse(await readFile(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as never;
}

/** The `upscale` command and flags a service runs: from `command`, or after `bin/upscale.js` in `entrypoint`. */
function upscaleArgs(s: Service): string[] {
  const entry = s.entrypoint ?? [];
  const i = entry.findIndex((a) => a.endsWith('bin/upscale.js'));
  return [...(i >= 0 ? entry.slice(i + 1) : []), ...(s.command ?? [])];
}

describe('docker-compose.yml', () => {
  it('has Redis 7 with AOF and noeviction, the server, scalable workers, the simulator and an S3 store behind profiles', async () => {
    const { services, volumes } = await compose();
    expect(Object.keys(services).sort()).toEqual(['enqueue', 'minio', 'minio-bucket', 'redis', 'server', 'sim', 'worker']);
    expect(services.minio!.profiles).toEqual(['s3']);
    expect(services['minio-bucket']!.profiles).toEqual(['s3']);
    const redis = services.redis!;
    expect(redis.image).toMatch(/^redis:7/);
    expect(redis.command?.join(' ')).toMatch(/--appendonly yes/);
    expect(redis.command?.join(' ')).toMatch(/--maxmemory-policy noeviction/);
    expect(redis.volumes).toContain('redis-data:/data');
    expect(upscaleArgs(services.server!)[0]).toBe('serve');
    expect(upscaleArgs(services.worker!)[0]).toBe('worker');
    // `--scale worker=4` needs no fixed name and no published port.
    expect(services.worker!.container_name).toBeUndefined();
    expect(services.worker!.ports).toBeUndefined();
    expect(services.worker!.environment?.OUTPUT_URL).toBe('${OUTPUT_URL:-file:///data/output}');
    expect(services.sim!.profiles).toEqual(['sim']);
    expect(upscaleArgs(services.sim!)[0]).toBe('sim');
    expect(services.server!.ports).toEqual(['127.0.0.1:8080:8080']);
    for (const name of ['server', 'worker', 'sim', 'enqueue']) expect(services[name]!.build, name).toBe('.');
    expect(Object.keys(volumes)).toEqual(['redis-data', 'output', 'minio-data']);
  });

  it('runs only commands and flags the CLI has, and sets only variables the config schema knows', async () => {
    const program = new Command('upscale');
    registerCommands(program);
    const { services } = await compose();
    for (const [name, service] of Object.entries(services)) {
      if (['redis', 'minio', 'minio-bucket'].includes(name)) continue;
      const [command, ...rest] = upscaleArgs(service);
      const cmd = program.commands.find((c) => c.name() === command);
      expect(cmd, `${name}: upscale ${command}`).toBeDefined();
      const flags = new Set(cmd!.options.map((o) => o.long));
      for (const flag of rest.filter((a) => a.startsWith('--'))) expect(flags.has(flag), `${name}: ${command} ${flag}`).toBe(true);
      // The AWS SDK's credential chain reads its own standard variables.
      const aws = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'];
      for (const key of Object.keys(service.environment ?? {})) expect([...CONFIG_KEYS, ...aws] as string[], `${name}: ${key}`).toContain(key);
    }
  });
});

describe('Dockerfile', () => {
  it('is a multi-stage node:20-slim build that prunes dev dependencies and runs bin/upscale.js as a non-root user', async () => {
    const text = await readFile(join(ROOT, 'Dockerfile'), 'utf8');
    const from = [...text.matchAll(/^FROM\s+(\S+)/gm)].map((m) => m[1]);
    expect(from).toEqual(['node:20-slim', 'node:20-slim']);
    const runs = text.replace(/\\\n/g, ' ').match(/^RUN .*/gm)?.join('\n') ?? '';
    expect(runs).toMatch(/npm ci /);
    expect(runs).toMatch(/npm run build/);
    expect(runs).toMatch(/npm prune --omit=dev/);
    expect(text).toMatch(/^USER node$/m);
    expect(text).toMatch(/^ENTRYPOINT \["node", "bin\/upscale\.js"\]$/m);
    const ignored = (await readFile(join(ROOT, '.dockerignore'), 'utf8')).split('\n').map((l) => l.trim());
    for (const copied of ['src', 'bin', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json']) {
      expect(ignored, copied).not.toContain(copied);
      expect(text, copied).toMatch(new RegExp(`^COPY .*\\b${copied.replace('.', '\\.')}\\b`, 'm'));
    }
  });

  it("builds as the image does, and the image's ENTRYPOINT lists every command", { timeout: 180_000 }, async () => {
    const app = await mkdtemp(join(tmpdir(), 'image-'));
    try {
      // `npm run build` is `tsc -p tsconfig.build.json`; built into the image layout instead of the work tree's dist/.
      await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', join(app, 'dist')], { cwd: ROOT });
      await cp(join(ROOT, 'bin'), join(app, 'bin'), { recursive: true });
      await cp(join(ROOT, 'package.json'), join(app, 'package.json'));
      await symlink(join(ROOT, 'node_modules'), join(app, 'node_modules'), 'dir');
      const { stdout } = await run(process.execPath, ['bin/upscale.js', '--help'], { cwd: app });
      for (const command of ['enqueue', 'worker', 'serve', 'sim', 'status', 'export', 'estimate', 'demo']) {
        expect(stdout).toMatch(new RegExp(`^\\s+${command}\\b`, 'm'));
      }
    } finally {
      await rm(app, { recursive: true, force: true });
    }
  });
});
