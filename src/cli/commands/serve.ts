/**
 * `upscale serve [--port 8080] [--host 127.0.0.1] [--no-dashboard] [--no-callbacks] [--no-metrics] [--dashboard-write]`:
 * the HTTP app of src/server (callback receiver, dashboard, /metrics, /healthz). Prints `listening on http://HOST:PORT`
 * on standard output once it listens; SIGINT/SIGTERM close it cleanly (exit 0), within SHUTDOWN_TIMEOUT whatever Redis does.
 *
 * Run the public callback receiver and the private dashboard as separate processes with
 * `--no-dashboard --no-metrics` and `--no-callbacks`.
 */
import type { AddressInfo } from 'node:net';
import type { Command } from 'commander';
import { loadConfig } from '../../config/index.js';
import { createRuntime } from '../../runtime.js';
import { dashboardCredentials, warnIfDashboardExposed } from '../../server/auth.js';
import { untilStopped } from '../until-stopped.js';
import { UsageError } from '../usage-error.js';

interface ServeOptions {
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

function urlOf(address: AddressInfo): string {
  const host =
    address.family === 'IPv6' || address.address.includes(':') ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
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
      const rt = createRuntime(config, { role: 'worker' });
      const log = rt.log;
      if (opts.dashboard) warnIfDashboardExposed(log, opts.host, dashboardCredentials(config));
      if (opts.callbacks) {
        if (!config.webhookHmacKey)
          log.info(
            'callbacks are checked by their per-job token only (set KIE_WEBHOOK_HMAC_KEY to verify kie.ai signatures too)',
          );
        if (!config.apiKey && !process.env.CALLBACK_SECRET) {
          log.warn(
            "neither KIE_API_KEY nor CALLBACK_SECRET is set: callback tokens will not match the workers' unless they run the same way",
          );
        }
      }
      // fastify and Bull Board load only when this command runs.
      const { buildApp } = await import('../../server/app.js');
      const app = buildApp(rt, {
        dashboard: opts.dashboard,
        callbacks: opts.callbacks,
        metrics: opts.metrics,
        dashboardWrite: opts.dashboardWrite ?? false,
      });
      try {
        await app.listen({ port, host: opts.host });
      } catch (e) {
        await app.close().catch(() => undefined);
        await rt.close();
        throw new Error(`cannot listen on ${opts.host}:${port}: ${(e as Error).message}`);
      }
      const url = urlOf(app.server.address() as AddressInfo);
      const parts = [
        opts.callbacks && 'callbacks',
        opts.dashboard && `dashboard${opts.dashboardWrite ? ' (write)' : ''}`,
        opts.metrics && 'metrics',
      ].filter(Boolean);
      log.info({ url, parts }, 'serving');
      process.stdout.write(`listening on ${url}\n`);
      const timeoutMs = config.shutdownTimeoutMs;
      // Requests in flight may finish until SHUTDOWN_TIMEOUT; whatever Redis does, the process exits 0 by then (with
      // Redis gone, a request waiting on it held the server open for good: a Ctrl-C that also stopped Redis left
      // `upscale serve` running).
      await untilStopped(log, {
        deadlineMs: timeoutMs,
        late: { fields: { timeoutMs }, message: 'the server did not close within SHUTDOWN_TIMEOUT (Redis unreachable?); exiting' },
        close: async (signal) => {
          log.info({ signal, timeoutMs }, 'closing the server');
          await app.close().catch((err: unknown) => log.error({ err }, 'error while closing the server'));
          await rt.close();
        },
      });
    });
}
