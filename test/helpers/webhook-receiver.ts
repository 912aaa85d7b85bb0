/**
 * A notification receiver on loopback for the tests: verifies every request's Standard Webhooks signature with the
 * `standardwebhooks` package (as a user's receiver would), keeps what arrived, and can answer the first N requests
 * with an error to exercise the retries.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { listenLoopback } from './listen.js';

export interface Received {
  id: string;
  headers: IncomingHttpHeaders;
  body: string;
  json: { type?: string; id?: string; batchId?: string | null; text?: string; data?: Record<string, unknown> };
  verified: boolean;
  /** The status this request was answered with. */
  status: number;
}

export interface Receiver {
  url: string;
  received: Received[];
  /** Requests answered 2xx, one per webhook-id that was accepted first. */
  accepted(): Received[];
  /** Answer the next `n` requests with `status`. */
  failNext(n: number, status?: number): void;
  close(): Promise<void>;
}

export async function startReceiver(secret: string | null): Promise<Receiver> {
  const wh = secret === null ? null : secret.startsWith('whsec_') ? new Webhook(secret) : new Webhook(secret, { format: 'raw' });
  const received: Received[] = [];
  let failing = 0;
  let failStatus = 500;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let verified = false;
      if (wh) {
        try {
          wh.verify(body, req.headers as Record<string, string>);
          verified = true;
        } catch {
          verified = false;
        }
      }
      let json: Received['json'] = {};
      try {
        json = JSON.parse(body) as Received['json'];
      } catch {
        json = {};
      }
      const status = failing > 0 ? failStatus : 204;
      if (failing > 0) failing--;
      received.push({ id: String(req.headers['webhook-id'] ?? ''), headers: req.headers, body, json, verified, status });
      res.statusCode = status;
      res.end();
    });
  });
  await listenLoopback(server);
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    received,
    accepted: () => received.filter((r) => r.status < 300),
    failNext(n, status = 500) {
      failing = n;
      failStatus = status;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
