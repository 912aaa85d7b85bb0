#!/usr/bin/env node
/**
 * The `upscale` command: thin commander commands over the library (ARCHITECTURE.md, "Thin CLI over a library").
 * Each command lives in `src/cli/commands/<name>.ts` and exports `register(program)`.
 */
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config/index.js';
import { registerCommands } from './commands/index.js';

export function buildProgram(): Command {
  const program = new Command('upscale')
    .description('Batch image upscaling through kie.ai on BullMQ: enqueue, run workers, watch, export.')
    .showHelpAfterError('(run with --help for usage)')
    .allowExcessArguments(false)
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
      process.exitCode = e.exitCode;
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
    console.error(`upscale: ${e instanceof Error ? e.message : String(e)}`);
    process.exitCode = 1;
  }
}

await main();
