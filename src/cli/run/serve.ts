/** What `upscale serve` runs once its flags are checked (src/cli/commands/serve.ts). Loaded only when it runs. */
import type { AddressInfo } from 'node:net';
import type { Config } from '../../config/index.js';
import { createRuntime } from '../../runtime.js';
import { dashboardCredentials, warnIfDashboardExposed } from '../../server/auth.js';
import { untilStopped } from '../until-stopped.js';
import type { ServeOptions } from '../commands/serve.js';

function urlOf(address: AddressInfo): string {
  const host =
    address.family === 'IPv6' || address.address.includes(':') ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}

/** Listens on `opts.host`:`port` until SIGINT/SIGTERM; prints `listening on URL` on standard output once it does. */
export async function runServe(config: Config, port: number, opts: ServeOptions): Promise<void> {
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
}
