#!/usr/bin/env node
/**
 * The `upscale` command: thin commander commands over the library (ARCHITECTURE.md, "Thin CLI over a library").
 * Each command lives in `src/cli/commands/<name>.ts` and exports `register(program)`: its flags and their checks,
 * kept light. What the command runs lives in `src/cli/run/<name>.ts` (or the library, for sim and demo) and is
 * imported by the action only when the command runs, so no process loads another command's dependencies
 * (`upscale worker` neither the producer nor the server; `upscale status` not the lanes).
 */
// First: it sets how V8 sizes the heap (worker, enqueue) before anything else allocates.
import './heap.js';
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Command, CommanderError } from 'commander';
import { ConfigError, redactUserinfo } from '../config/index.js';
import { registerCommands } from './commands/index.js';

export function buildProgram(): Command {
  const program = new Command('upscale')
    .description('Batch image upscaling through kie.ai on BullMQ: enqueue, run workers, watch, export.')
    .showHelpAfterError('(run with --help for usage)')
    .allowExcessArguments(false)
    // commander's own refusals (a missing or unknown option, a value not among the choices) read like every other
    // usage error: `upscale: …`, not `error: …`.
    .configureOutput({ outputError: (text, write) => write(text.replace(/^error: /, 'upscale: ')) })
    .exitOverride();
  registerCommands(program);
  return program;
}

export async function main(argv: string[] = process.argv): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version exit 0; every usage error exits 2 (1 means "done, but some input was rejected").
      process.exitCode = e.exitCode === 0 ? 0 : 2;
      return;
    }
    if (e instanceof ConfigError || (e as Error | undefined)?.name === 'ConfigError') {
      console.error(`upscale: ${(e as Error).message}`);
      process.exitCode = 2;
      return;
    }
    if ((e as Error | undefined)?.name === 'UsageError') {
      console.error(`upscale: ${(e as Error).message}`);
      process.exitCode = 2;
      return;
    }
    console.error(`upscale: ${redisUnreachable(e) ?? (e instanceof Error ? e.message : String(e))}`);
    process.exitCode = 1;
  }
}

/**
 * What to say when a one-shot command gave up on Redis (ioredis' MaxRetriesPerRequestError: its commands fail after
 * 3 tries, src/queue/connection.ts): where it looked (REDIS_URL without its password, or REDIS_CLUSTER_NODES) and
 * what to do. Null for any other error.
 */
export function redisUnreachable(e: unknown, env: NodeJS.ProcessEnv = process.env): string | null {
  if ((e as { name?: unknown } | null)?.name !== 'MaxRetriesPerRequestError') return null;
  const where = env.REDIS_CLUSTER_NODES ? `the Redis Cluster at ${env.REDIS_CLUSTER_NODES}` : `Redis at ${redactUserinfo(env.REDIS_URL ?? 'redis://127.0.0.1:6379')}`;
  return `${where} did not answer (3 tries); start it, or point REDIS_URL (or REDIS_CLUSTER_NODES) at a running one`;
}

/** True when this file is the program being run (`tsx src/cli/index.ts`), not imported (tests, bin/upscale.js). */
function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(entry)).href;
  } catch {
    return false;
  }
}

if (isEntryPoint()) await main();
