/**
 * `upscale serve [--port 8080] [--host 127.0.0.1] [--no-dashboard] [--no-callbacks] [--no-metrics] [--dashboard-write]`:
 * the HTTP app of src/server (callback receiver, dashboard, /metrics, /healthz). Prints `listening on http://HOST:PORT`
 * on standard output once it listens; SIGINT/SIGTERM close it cleanly (exit 0), within SHUTDOWN_TIMEOUT whatever Redis does.
 *
 * Run the public callback receiver and the private dashboard as separate processes with
 * `--no-dashboard --no-metrics` and `--no-callbacks`.
 */
import type { Command } from 'commander';
import { loadConfig } from '../../config/index.js';
import { UsageError } from '../usage-error.js';

export interface ServeOptions {
  port: string;
  host: string;
  dashboard: boolean;
  callbacks: boolean;
  metrics: boolean;
  dashboardWrite?: boolean;
}

export function parsePort(text: string): number {
  const n = Number(text);
  if (!/^\d{1,5}$/.test(text.trim()) || n > 65_535)
    throw new UsageError(`--port "${text}" must be a whole number from 0 to 65535 (0 picks a free port)`);
  return n;
}

/** Checks the flags together; throws UsageError with the fix. */
export function checkServeOptions(opts: ServeOptions): void {
  if (opts.host.trim() === '')
    throw new UsageError('--host is empty; use an address such as 127.0.0.1 or 0.0.0.0');
  if (opts.dashboardWrite && !opts.dashboard)
    throw new UsageError('--dashboard-write needs the dashboard; drop --no-dashboard or --dashboard-write');
  if (!opts.dashboard && !opts.callbacks && !opts.metrics) {
    throw new UsageError(
      '--no-dashboard, --no-callbacks and --no-metrics leave nothing to serve; keep at least one',
    );
  }
}

export function register(program: Command): void {
  program
    .command('serve')
    .description(
      'Serve the kie.ai callback receiver, the dashboard (Bull Board + batches) and /metrics until SIGINT/SIGTERM',
    )
    .option('--port <port>', 'port to listen on (0 picks a free one)', '8080')
    .option('--host <host>', 'interface to listen on', '127.0.0.1')
    .option('--no-dashboard', 'do not serve the dashboard (/dashboard, /api/batches)')
    .option('--no-callbacks', 'do not serve the callback receiver (/callbacks/kie/:id)')
    .option('--no-metrics', 'do not serve /metrics')
    .option('--dashboard-write', 'let the dashboard retry and clean jobs (read-only by default)')
    .action(async (opts: ServeOptions) => {
      const port = parsePort(opts.port);
      checkServeOptions(opts);
      const config = loadConfig();
      // The runtime, fastify and Bull Board load only when this command runs.
      const { runServe } = await import('../run/serve.js');
      await runServe(config, port, opts);
    });
}
