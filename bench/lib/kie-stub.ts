/**
 * A zero-work stand-in for kie.ai, for measuring our pipeline's own overhead (scenario 2): the same two endpoints
 * and envelope as the simulator (`POST /api/v1/jobs/createTask`, `GET /api/v1/jobs/recordInfo`), but no limits,
 * no image fetch, no upscale, no files: a task succeeds `latencyMs` after it was created. The simulator does all of
 * that for real (about 7 ms of CPU per image), which on two cores caps the pipeline below what it could do.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface KieStub {
  url: string;
  stats(): { creates: number; queries: number };
  stop(): Promise<void>;
}

export async function startKieStub(o: { apiKey: string; latencyMs: number }): Promise<KieStub> {
  const tasks = new Map<string, { createdAt: number; param: string }>();
  let next = 0;
  let creates = 0;
  let queries = 0;
  const send = (res: ServerResponse, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.headers.authorization !== `Bearer ${o.apiKey}`) return send(res, { code: 401, msg: 'unauthorized', data: null });
    const url = req.url ?? '';
    if (req.method === 'POST' && url.startsWith('/api/v1/jobs/createTask')) {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        creates++;
        const taskId = `stub${(next++).toString(16).padStart(12, '0')}`;
        tasks.set(taskId, { createdAt: Date.now(), param: body });
        send(res, { code: 200, msg: 'success', data: { taskId } });
      });
      return undefined;
    }
    if (req.method === 'GET' && url.startsWith('/api/v1/jobs/recordInfo')) {
      queries++;
      const taskId = new URL(url, 'http://x').searchParams.get('taskId') ?? '';
      const t = tasks.get(taskId);
      if (!t) return send(res, { code: 422, msg: 'recordInfo is null', data: null });
      const now = Date.now();
      const done = now - t.createdAt >= o.latencyMs;
      return send(res, {
        code: 200,
        msg: 'success',
        data: {
          taskId,
          model: 'topaz/image-upscale',
          state: done ? 'success' : 'generating',
          param: t.param,
          resultJson: done ? JSON.stringify({ resultUrls: [`http://127.0.0.1/results/${taskId}/0.png`] }) : '',
          failCode: null,
          failMsg: null,
          costTime: done ? o.latencyMs : null,
          completeTime: done ? t.createdAt + o.latencyMs : null,
          createTime: t.createdAt,
          updateTime: now,
          creditsConsumed: done ? 10 : 0,
        },
      });
    }
    res.writeHead(404).end();
    return undefined;
  });
  server.keepAliveTimeout = 10_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stats: () => ({ creates, queries }),
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
