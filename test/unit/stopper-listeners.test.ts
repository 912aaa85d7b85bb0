import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KieClient } from '../../src/kie/client.js';
import { Stopper } from '../../src/worker/shutdown.js';

/** A kie.ai stand-in that answers recordInfo after 100 ms, so many calls are in flight at once. */
let server: Server;
let baseUrl: string;
beforeAll(async () => {
  server = createServer((_req, res) => {
    setTimeout(() => {
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ code: 200, msg: 'success', data: { taskId: 't', state: 'generating' } }));
    }, 100);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe("the worker's stop signals with many calls in flight (src/worker/shutdown.ts)", () => {
  it('40 recordInfo calls at once on the drain signal raise no "Possible EventTarget memory leak" warning', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    const stopper = new Stopper();
    const kie = new KieClient({ apiKey: 'sk-test', baseUrl, uploadBaseUrl: baseUrl, timeoutMs: 10_000 });
    try {
      await Promise.all(Array.from({ length: 40 }, () => kie.getTask('t', { signal: stopper.aborted })));
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
      kie.close();
    }
    expect(warnings.map((w) => `${w.name}: ${w.message}`)).toEqual([]);
  });
});
