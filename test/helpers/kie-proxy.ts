/**
 * A loopback proxy in front of the simulator that answers chosen calls itself: for answers the simulator does not
 * give (a recordInfo refused with 433 or 402, as a test decides when). Every other call goes through unchanged.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { listenLoopback } from './listen.js';

export interface ProxyAnswer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export interface KieProxy {
  url: string;
  /** Calls received per path (no query string), answered by the proxy or passed through. */
  calls(path: string): number;
  /** From now on, answers the calls for which `answer` returns something; null passes everything through again. */
  intercept(answer: ((method: string, path: string) => ProxyAnswer | null) | null): void;
  /**
   * Holds the answer of the next call to `path` (passed through: the upstream has answered, so a createTask's task
   * exists) until `releaseAll()`; repeatable.
   */
  holdNext(path: string): void;
  /** Answers held now. */
  heldCount(): number;
  /** Sends every held answer. */
  releaseAll(): void;
  close(): Promise<void>;
}

export async function startKieProxy(target: string): Promise<KieProxy> {
  let hook: ((method: string, path: string) => ProxyAnswer | null) | null = null;
  const counts = new Map<string, number>();
  const toHold = new Map<string, number>();
  const held: (() => void)[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const path = (req.url ?? '/').split('?', 1)[0] as string;
        counts.set(path, (counts.get(path) ?? 0) + 1);
        const own = hook?.(req.method ?? 'GET', path) ?? null;
        if (own) {
          const text = JSON.stringify(own.body);
          res.writeHead(own.status, { 'content-type': 'application/json', ...own.headers });
          res.end(text);
          return;
        }
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && k !== 'host' && k !== 'content-length') headers[k] = v;
        const upstream = await fetch(`${target}${req.url ?? '/'}`, {
          method: req.method ?? 'GET',
          headers,
          ...(chunks.length > 0 ? { body: Buffer.concat(chunks) } : {}),
        });
        const body = Buffer.from(await upstream.arrayBuffer());
        const hold = toHold.get(path) ?? 0;
        if (hold > 0) {
          toHold.set(path, hold - 1);
          await new Promise<void>((resolve) => held.push(resolve));
        }
        res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' });
        res.end(body);
      })().catch(() => res.destroy());
    });
  });
  await listenLoopback(server);
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls: (path) => counts.get(path) ?? 0,
    intercept(answer) {
      hook = answer;
    },
    holdNext(path) {
      toHold.set(path, (toHold.get(path) ?? 0) + 1);
    },
    heldCount: () => held.length,
    releaseAll() {
      for (const release of held.splice(0)) release();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
