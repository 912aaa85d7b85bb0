/**
 * A real local HTTP server for the kie client tests (ky's way): listens on 127.0.0.1, port 0, records every
 * request (method, path, query, headers, body, client port) and answers with a handler each test sets.
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect } from 'vitest';
import { KieClient, KieError } from '../../src/kie/index.js';

export const KEY = 'sk-test-S3CRET-0123456789abcdef';

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: Buffer;
  remotePort: number | undefined;
  /** The body parsed as JSON, typed loosely so tests can reach into it. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json(): any;
}

export type Handler = (req: RecordedRequest, res: ServerResponse) => void | Promise<void>;

export interface TestServer {
  url: string;
  requests: RecordedRequest[];
  /** Replaces the handler and forgets the recorded requests. */
  handle(handler: Handler): void;
  close(): Promise<void>;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function sendText(
  res: ServerResponse,
  status: number,
  text: string,
  contentType = 'text/plain',
): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export const ok = (data: unknown, msg = 'success') => ({ code: 200, msg, data });

export async function startTestServer(
  initial: Handler = (_req, res) => sendJson(res, 200, ok(null)),
): Promise<TestServer> {
  let handler = initial;
  const requests: RecordedRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const body = Buffer.concat(chunks);
      const recorded: RecordedRequest = {
        method: req.method ?? '',
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        body,
        remotePort: req.socket.remotePort,
        // eslint-disable-next-line @typescript-eslint/no-unsafe-return
        json: () => JSON.parse(body.toString('utf8')),
      };
      requests.push(recorded);
      Promise.resolve(handler(recorded, res)).catch((e: unknown) => {
        if (!res.headersSent) sendText(res, 599, `test handler threw: ${String(e)}`);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    handle(next) {
      handler = next;
      requests.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export { closedPort } from '../helpers/ports.js';

/** Collects every string an error could show: message, toJSON, and util.inspect (with its cause). */
export async function everythingShown(e: unknown): Promise<string> {
  const { inspect } = await import('node:util');
  const json = typeof (e as { toJSON?: unknown }).toJSON === 'function' ? JSON.stringify(e) : '';
  return `${(e as Error).message}\n${json}\n${inspect(e, { depth: 10 })}\n${String((e as Error).stack)}`;
}

/** Awaits a call that must fail and returns its KieError (failing the test otherwise). */
export async function failure(p: Promise<unknown>): Promise<KieError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(KieError);
    return e as KieError;
  }
  throw new Error('expected the call to fail');
}

/**
 * A test server and a KieClient pointed at it (2 s timeout, KEY), started before the tests of the block it is called
 * in and closed after them (registers beforeAll/afterAll). Read `.server` and `.client` inside the tests.
 */
export function serverAndClient(): { readonly server: TestServer; readonly client: KieClient } {
  const pair = {} as { server: TestServer; client: KieClient };
  beforeAll(async () => {
    pair.server = await startTestServer();
    pair.client = new KieClient({ apiKey: KEY, baseUrl: `${pair.server.url}/`, uploadBaseUrl: 'http://127.0.0.1:9', timeoutMs: 2000 });
  });
  afterAll(async () => {
    pair.client.close();
    await pair.server.close();
  });
  return pair;
}
