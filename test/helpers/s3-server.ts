/**
 * A real S3-protocol server on loopback for the storage tests: s3rver (the maintained `@20minutes/s3rver` fork),
 * started in-process on an ephemeral port over a temp folder, with a bucket made through its own configuration
 * (it verifies SigV4 signatures against its one account, S3RVER / S3RVER). In front of it, an optional fault proxy
 * answers chosen requests with a 500 or cuts the connection mid-body, and records every request it saw.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listenLoopback } from './listen.js';

const require = createRequire(import.meta.url);

interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
type S3rverClass = new (options: Record<string, unknown>) => S3rverInstance;

/** s3rver's built-in account. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

export interface S3TestServer {
  /** `http://127.0.0.1:PORT` of s3rver itself. */
  endpoint: string;
  buckets: string[];
  stop(): Promise<void>;
}

export async function startS3Server(buckets: string[] = ['outputs']): Promise<S3TestServer> {
  const S3rver = require('@20minutes/s3rver') as S3rverClass;
  const directory = await mkdtemp(join(tmpdir(), 's3rver-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: buckets.map((name) => ({ name, configs: [] })),
  });
  const address = await server.run();
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    buckets,
    async stop() {
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/**
 * What the proxy does with one request: forward it, answer 500 InternalError, answer 503 SlowDown (S3's
 * throttling), or cut the connection mid-body (`reset`: as a store going away does).
 */
export type Fault = 'pass' | '500' | '503' | 'reset';

export interface SeenRequest {
  method: string;
  url: string;
  fault: Fault;
}

export interface FaultProxy {
  endpoint: string;
  seen: SeenRequest[];
  /** Decides per request; default: pass everything. */
  rule: (req: IncomingMessage, seen: readonly SeenRequest[]) => Fault | Promise<Fault>;
  stop(): Promise<void>;
}

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const to = new URL(target);
  const proxy: FaultProxy = {
    endpoint: '',
    seen: [],
    rule: () => 'pass',
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server: Server = createServer((req, res) => {
    void (async () => {
      const fault = await proxy.rule(req, proxy.seen);
      proxy.seen.push({ method: req.method ?? '', url: req.url ?? '', fault });
      if (fault === '500') {
        req.resume();
        req.on('end', () => {
          res.writeHead(500, { 'content-type': 'application/xml' });
          res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected by the test proxy</Message></Error>');
        });
        return;
      }
      if (fault === '503') {
        req.resume();
        req.on('end', () => {
          res.writeHead(503, { 'content-type': 'application/xml' });
          res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>');
        });
        return;
      }
      if (fault === 'reset') {
        let got = 0;
        req.on('data', (chunk: Buffer) => {
          got += chunk.length;
          if (got > 64 * 1024) req.socket.destroy();
        });
        req.on('end', () => req.socket.destroy());
        return;
      }
      // Host stays as the client signed it: s3rver checks the signature over the Host header it receives.
      const upstream = httpRequest(
        { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    })();
  });
  server.keepAliveTimeout = 1000;
  await listenLoopback(server);
  proxy.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return proxy;
}
