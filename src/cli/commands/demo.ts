/**
 * `upscale demo [--out DIR] [--time-scale N] [--port P] [--keep]`: the whole pipeline in one process against the
 * simulator (see src/demo/run.ts). Exit 0 when every sample image ended as expected, 1 otherwise, 130 on Ctrl-C.
 */
import type { Command } from 'commander';
import { parsePort } from './serve.js';
import { UsageError } from '../usage-error.js';

interface DemoCliOptions {
  out: string;
  timeScale: string;
  port: string;
  keep?: boolean;
}

export function register(program: Command): void {
  program
    .command('demo')
    .description('Run the whole pipeline against the built-in simulator on sample images, print the results, write the outputs')
    .option('--out <dir>', 'write the batch folder under this directory', 'output/demo')
    .option('--time-scale <n>', "simulator speed-up (kie.ai's latencies and limits divided by it)", '20')
    .option('--port <port>', 'port of the dashboard and callback receiver (0 picks a free one)', '0')
    .option('--keep', 'leave the dashboard running after the report until Ctrl-C')
    .action(async (opts: DemoCliOptions) => {
      const timeScale = Number(opts.timeScale);
      if (!Number.isFinite(timeScale) || timeScale < 1 || timeScale > 1000) {
        throw new UsageError(`--time-scale "${opts.timeScale}" must be a number from 1 to 1000 (e.g. 20)`);
      }
      if (opts.out.trim() === '') throw new UsageError('--out is empty; give a directory such as output/demo');
      const port = parsePort(opts.port);
      const controller = new AbortController();
      const stop = () => controller.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        // The demo (simulator, sharp, server) loads only when this command runs.
        const { runDemo } = await import('../../demo/index.js');
        process.exitCode = await runDemo({
          outDir: opts.out,
          timeScale,
          port,
          keep: opts.keep ?? false,
          env: { REDIS_URL: process.env.REDIS_URL, PATH: process.env.PATH },
          signal: controller.signal,
        });
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    });
}
