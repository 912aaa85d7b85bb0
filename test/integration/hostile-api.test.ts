/**
 * Hostile answers from "kie.ai", end to end through a real `upscale worker` process: a tiny local HTTP server
 * pretends to be kie.ai and answers each image (chosen by its input URL) with one kind of garbage: truncated JSON,
 * HTML error pages (as 502 and as 200), wrong types in the envelope, an empty body, a body over the client's 10 MiB
 * limit, no answer at all, a resultJson that is not JSON, an empty resultUrls on success, an unknown state.
 * Each becomes a recorded failure with a reason, or a retry that succeeds; the worker never crashes or hangs.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { enqueue } from '../../src/producer/index.js';
import type { ResultRecord } from '../../src/results/record.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { scaledPipelineEnv } from '../../src/sim/scaled-config.js';
import { waitForBatch } from '../helpers/pipeline.js';
import { spawnUpscale, type Proc } from '../helpers/processes.js';
import { deletePrefix, freshPrefix, testRedisUrl, waitFor } from '../helpers/redis.js';
import { makeImage } from '../helpers/images.js';
import { listenLoopback } from '../helpers/listen.js';

const SCALE = 20;
const HTML_502 = '<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1><p>cloudflare</p></body></html>';
const ok = (data: unknown) => JSON.stringify({ code: 200, msg: 'success', data });
const cut = (text: string) => text.slice(0, Math.floor(text.length / 2));

type Answer = { status?: number; type?: string; body: string | Buffer } | 'hang';
/** How the fake kie.ai answers one case: createTask (n = calls so far for this input, from 1) and recordInfo. */
interface Case {
  create?: (n: number, taskId: string) => Answer;
  poll?: (n: number, taskId: string, input: string) => Answer;
  /** Expected end: a state and a failMsg pattern (or succeeded). */
  expect: { state: 'succeeded' } | { state: 'timed_out' } | { state: 'failed'; failMsg: RegExp; failCode?: string };
}

const success = (taskId: string, resultJson: unknown) => ok({ taskId, state: 'success', resultJson, creditsConsumed: 10, createTime: Date.now() - 1000, completeTime: Date.now() });
const goodResult = (taskId: string) => JSON.stringify({ resultUrls: [`https://tempfile.example/${taskId}.png`] });

const CASES: Record<string, Case> = {
  'create-html-502': { create: () => ({ status: 502, type: 'text/html', body: HTML_502 }), expect: { state: 'failed', failCode: '502', failMsg: /502 Bad Gateway/ } },
  // A gateway's 502 page is transient (Cloudflare in front of kie.ai): retried like a 500, the image goes through.
  'create-html-502-twice': {
    create: (n, taskId) => (n <= 2 ? { status: 502, type: 'text/html', body: HTML_502 } : { body: ok({ taskId }) }),
    expect: { state: 'succeeded' },
  },
  'create-html-200': { create: () => ({ type: 'text/html', body: HTML_502 }), expect: { state: 'failed', failMsg: /answer is an HTML page, not JSON/ } },
  'create-data-string': { create: () => ({ body: ok('task-as-a-string') }), expect: { state: 'failed', failMsg: /data is a string, not an object with a taskId/ } },
  'create-no-taskid': { create: () => ({ body: ok({ id: 1 }) }), expect: { state: 'failed', failMsg: /data has no taskId/ } },
  'create-code-object': { create: () => ({ body: JSON.stringify({ code: { value: 200 }, msg: ['ok'] }) }), expect: { state: 'failed', failMsg: /envelope code is not a number/ } },
  'create-empty-body': { create: () => ({ body: '' }), expect: { state: 'failed', failMsg: /answer is empty/ } },
  'create-huge-body': { create: () => ({ body: Buffer.alloc(11 * 1024 * 1024, 0x20) }), expect: { state: 'failed', failMsg: /answer too large/ } },
  'create-no-answer': { create: () => 'hang', expect: { state: 'failed', failMsg: /timeout: no answer within 1\.0s/ } },
  'create-lenient-types': {
    create: (_n, taskId) => ({ body: JSON.stringify({ code: '200', message: 'success', data: { task_id: taskId } }) }),
    expect: { state: 'succeeded' },
  },
  'create-truncated-once': {
    create: (n, taskId) => ({ body: n === 1 ? cut(ok({ taskId })) : ok({ taskId }) }),
    expect: { state: 'succeeded' },
  },
  'poll-result-not-json': { poll: (_n, t) => ({ body: success(t, '{"resultUrls": [') }), expect: { state: 'failed', failCode: 'BAD_RESULT', failMsg: /task succeeded but resultJson is not JSON/ } },
  'poll-empty-result-urls': { poll: (_n, t) => ({ body: success(t, '{"resultUrls":[]}') }), expect: { state: 'failed', failCode: 'BAD_RESULT', failMsg: /task succeeded but resultUrls is empty/ } },
  'poll-truncated': { poll: (_n, t) => ({ body: cut(success(t, goodResult(t))) }), expect: { state: 'failed', failMsg: /status check failed 10 times in a row; last: .*not JSON/ } },
  'poll-html-502': { poll: () => ({ status: 502, type: 'text/html', body: HTML_502 }), expect: { state: 'failed', failCode: '502', failMsg: /status check failed 10 times in a row; last: .*502 Bad Gateway/ } },
  // An unknown state or data: null on a code-200 answer means "still running" (kie's live dialect): followed until the deadline.
  'poll-state-number': { poll: (_n, t) => ({ body: ok({ taskId: t, state: 42 }) }), expect: { state: 'timed_out' } },
  'poll-data-null': { poll: () => ({ body: ok(null) }), expect: { state: 'timed_out' } },
  'poll-fail-odd-types': {
    poll: (_n, t) => ({ body: ok({ taskId: t, state: 'FAIL', failCode: 500, failMsg: { nested: true } }) }),
    expect: { state: 'failed', failCode: '500', failMsg: /kie.ai reported the task failed/ },
  },
  'poll-garbage-then-success': {
    poll: (n, t) => (n <= 2 ? { type: 'text/html', body: HTML_502 } : { body: success(t, goodResult(t)) }),
    expect: { state: 'succeeded' },
  },
};

/** The fake kie.ai: answers per case, and counts the tasks it created per input (created even when the answer is garbage). */
function fakeKie() {
  const tasks = new Map<string, { input: string; polls: number }>();
  const creates = new Map<string, number>();
  const hanging = new Set<ServerResponse>();
  const caseOf = (input: string) => CASES[/\/img\/([a-z0-9-]+)\.png$/.exec(input)?.[1] ?? ''];
  let image: Buffer;
  const send = (res: ServerResponse, a: Answer) => {
    if (a === 'hang') return void hanging.add(res);
    res.writeHead(a.status ?? 200, { 'content-type': a.type ?? 'application/json' }).end(a.body);
  };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let raw = '';
    req.on('data', (d: Buffer) => (raw += d.toString()));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname.startsWith('/img/')) return void res.writeHead(200, { 'content-type': 'image/png' }).end(image);
      if (url.pathname === '/api/v1/jobs/createTask') {
        const body = JSON.parse(raw) as { input: { image_url?: string; image?: string } };
        const input = body.input.image_url ?? body.input.image ?? '';
        const n = (creates.get(input) ?? 0) + 1;
        creates.set(input, n);
        const taskId = `t-${randomBytes(6).toString('hex')}`;
        tasks.set(taskId, { input, polls: 0 });
        return send(res, caseOf(input)?.create?.(n, taskId) ?? { body: ok({ taskId }) });
      }
      if (url.pathname === '/api/v1/jobs/recordInfo') {
        const taskId = url.searchParams.get('taskId') ?? '';
        const task = tasks.get(taskId);
        if (!task) return send(res, { body: JSON.stringify({ code: 422, msg: 'recordInfo is null', data: null }) });
        task.polls++;
        return send(res, caseOf(task.input)?.poll?.(task.polls, taskId, task.input) ?? { body: success(taskId, goodResult(taskId)) });
      }
      send(res, { status: 404, body: JSON.stringify({ code: 404, msg: 'not found' }) });
    });
  });
  return {
    server,
    creates,
    async start() {
      image = await makeImage(40, 30);
      await listenLoopback(server);
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
    async stop() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

describe('hostile answers from kie.ai, through a worker process', () => {
  const kie = fakeKie();
  const prefix = freshPrefix('hostile-api');
  let rt: Runtime;
  let worker: Proc;
  let base: string;
  const records = new Map<string, ResultRecord>();

  beforeAll(async () => {
    base = await kie.start();
    const env = {
      ...scaledPipelineEnv({ simUrl: base, apiKey: `sk-hostile-${randomBytes(6).toString('hex')}`, timeScale: SCALE, redisUrl: testRedisUrl(), prefix }),
      KIE_REQUEST_TIMEOUT: '1s',
      RESUBMIT_FAILED: '0',
    };
    rt = createRuntime(loadConfig({}, env), { log: pino({ level: 'silent' }) });
    worker = spawnUpscale(['worker'], env);
    await waitFor(() => worker.stderr().includes('workers started') || worker.child.exitCode !== null, { timeoutMs: 30_000, what: 'worker start' });
    const items = Object.keys(CASES).map((name) => ({ input: `${base}/img/${name}.png`, model: 'topaz/image-upscale', factor: '2' }));
    expect(await enqueue(rt, items, { batchId: 'hostile-api' })).toMatchObject({ enqueued: items.length, rejected: [] });
    await waitForBatch(rt, 'hostile-api', 90_000);
    for await (const r of rt.store.records('hostile-api')) records.set(/\/img\/([a-z0-9-]+)\.png$/.exec(r.input)?.[1] ?? r.input, r);
  }, 120_000);

  afterAll(async () => {
    await worker?.stop('SIGKILL');
    await rt?.close();
    await kie.stop();
    await deletePrefix(testRedisUrl(), prefix);
  });

  it.each(Object.entries(CASES))('%s ends as expected, with a reason when it failed', (name, c) => {
    const r = records.get(name);
    expect(r, name).toBeDefined();
    expect(r!.state).toBe(c.expect.state);
    if (c.expect.state === 'failed') {
      expect(r!.failMsg).toMatch(c.expect.failMsg);
      if (c.expect.failCode) expect(r!.failCode).toBe(c.expect.failCode);
      expect(r!.completedAt).not.toBeNull();
    } else if (c.expect.state === 'timed_out') {
      expect(r!.failCode).toBe('timed_out');
      expect(r!.resultUrls).toEqual([]);
    } else {
      expect(r!.resultUrls).toEqual([`https://tempfile.example/${r!.taskId}.png`]);
    }
  });

  it('the worker is still running: no crash, no hang, no unhandled error', () => {
    expect(worker.child.exitCode).toBeNull();
    expect(worker.child.signalCode).toBeNull();
    expect(worker.stderr()).not.toMatch(/Unhandled|uncaughtException|"level":60/);
  });

  it('a createTask answered 200 but unreadable counts as an ambiguous submit: the second task for the input is not a silent double payment', () => {
    const r = records.get('create-truncated-once')!;
    const created = kie.creates.get(r.input);
    expect(created).toBe(2); // the truncated answer hid a task that was created, then createTask was sent again
    // The record must admit it: every extra task of an input is covered by an ambiguous submit.
    expect(r.ambiguousSubmits).toBeGreaterThanOrEqual(created! - 1);
  });
});
