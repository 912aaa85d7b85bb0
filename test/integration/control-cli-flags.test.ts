/** Flag checks of the status, export, pause, resume, retry, cancel and worker commands, in-process (they fail before Redis). */
import { tmpdir } from 'node:os';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { register as registerCancel } from '../../src/cli/commands/cancel.js';
import { register as registerExport } from '../../src/cli/commands/export.js';
import { parseLanes, register as registerPause } from '../../src/cli/commands/pause.js';
import { register as registerResume } from '../../src/cli/commands/resume.js';
import { register as registerRetry } from '../../src/cli/commands/retry.js';
import { register as registerStatus } from '../../src/cli/commands/status.js';
import { register as registerWorker } from '../../src/cli/commands/worker.js';
import { UsageError } from '../../src/cli/usage-error.js';

function program(): Command {
  const p = new Command('upscale').exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  for (const register of [registerStatus, registerExport, registerPause, registerResume, registerRetry, registerCancel, registerWorker]) register(p);
  return p;
}

async function usageError(...args: string[]): Promise<string> {
  try {
    await program().parseAsync(args, { from: 'user' });
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error(`upscale ${args.join(' ')} did not fail`);
}

describe('flags of the operator commands', () => {
  it('names the flag and says how to fix it', async () => {
    expect(await usageError('export', '--batch', 'b1', '--format', 'xml')).toBe(
      '--format: unknown format "xml"; use one of jsonl, csv (for example --format csv)',
    );
    expect(await usageError('export', '--format', 'csv')).toBe('--batch is missing: run `upscale export --batch ID` (`upscale status` lists batches)');
    expect(await usageError('export', '--batch', 'b1', '--out', ' ')).toContain('--out is empty');
    // the trial's export to a folder that does not exist printed a raw ENOENT and exited 1
    expect(await usageError('export', '--batch', 'b1', '--format', 'csv', '--out', '/nonexistent/dir/x.csv')).toBe(
      '--out "/nonexistent/dir/x.csv": the folder /nonexistent/dir does not exist; create it first',
    );
    expect(await usageError('export', '--batch', 'b1', '--out', tmpdir())).toBe(`--out "${tmpdir()}" is a folder; give a file name in it`);
    // an empty lane list is refused, not read as "the default lanes"
    expect(await usageError('worker', '--lanes', '')).toContain('--lanes is empty');
    expect(await usageError('retry')).toContain('upscale retry --batch ID');
    expect(await usageError('cancel', '--batch', 'no spaces please')).toMatch(/^--batch: batch id "no spaces please" must be/);
    expect(await usageError('pause', '--lanes', 'submit,nope')).toContain('--lanes: unknown lane "nope"; the lanes are submit, poll, download');
    expect(await usageError('resume', '--lanes', ',')).toContain('--lanes is empty');
    expect(await usageError('status', '--interval', '5s')).toContain('--interval applies only with --watch');
    expect(await usageError('status', '--watch', '--interval', '50ms')).toContain('too short');
    expect(await usageError('status', '--watch', '--interval', 'soon')).toMatch(/^--interval: "soon" is not a duration/);
    expect(await usageError('status', '--batch', '-x-')).toMatch(/^--batch: /);
  });

  it('parses lane lists', () => {
    expect(parseLanes('submit')).toEqual(['submit']);
    expect(parseLanes(' poll , submit,poll ')).toEqual(['poll', 'submit']);
    expect(parseLanes(['submit', 'poll,download', 'submit'])).toEqual(['submit', 'poll', 'download']);
    expect(() => parseLanes(['submit', ''])).not.toThrow();
    expect(() => parseLanes(['', ' , '])).toThrow('--lanes is empty');
  });

  it('a repeated --lanes adds lanes, for worker, pause and resume (commander kept only the last: `--lanes submit --lanes poll` ran poll alone)', async () => {
    // The actions would need Redis: each records the lanes it would act on instead, parsed as the actions parse them.
    const p = program();
    const seen: Record<string, { lanes: unknown; source: unknown }> = {};
    for (const name of ['pause', 'resume', 'worker']) {
      const cmd = p.commands.find((c) => c.name() === name) as Command;
      cmd.action((opts: { lanes?: string | string[] }, c: Command) => {
        seen[name] = { lanes: opts.lanes === undefined ? undefined : parseLanes(opts.lanes), source: c.getOptionValueSource('lanes') };
      });
    }
    const lanesOf = async (...args: string[]) => {
      await p.parseAsync(args, { from: 'user' });
      return seen[args[0] as string];
    };
    expect(await lanesOf('worker', '--lanes', 'submit', '--lanes', 'poll')).toEqual({ lanes: ['submit', 'poll'], source: 'cli' });
    expect(await lanesOf('pause', '--lanes', 'submit', '--lanes', 'poll,download')).toEqual({ lanes: ['submit', 'poll', 'download'], source: 'cli' });
    expect(await lanesOf('resume', '--lanes', 'download', '--lanes', 'download')).toEqual({ lanes: ['download'], source: 'cli' });
    // No --lanes keeps each command's default; a first value equal to the default is not added to it.
    expect((await lanesOf('pause'))?.lanes).toEqual(['submit']);
    expect((await lanesOf('resume'))?.lanes).toEqual(['submit', 'poll', 'download']);
    expect((await lanesOf('worker'))?.lanes).toBeUndefined();
    expect((await lanesOf('pause', '--lanes', 'submit', '--lanes', 'poll'))?.lanes).toEqual(['submit', 'poll']);
  });
});
