import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Starts a test's own HTTP server on a free loopback port, keeping idle keep-alive connections for 2 minutes.
 * Node's default (5 s) races its clients on a loaded machine: a client (undici's fetch, an http.Agent) reuses a
 * pooled socket at the moment the server closes it for idleness, and the request fails with ECONNRESET (seen in CI
 * through the dashboard proxy test). Teardown closes the connections (`close()` drops idle ones). Resolves to the port.
 */
export async function listenLoopback(server: Server): Promise<number> {
  server.keepAliveTimeout = 120_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}
