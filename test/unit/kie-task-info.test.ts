/** recordInfo answers as getTask normalises them: resultJson, param, failCode, credits and times. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KieClient, parseTaskInfo, TOPAZ } from '../../src/kie/index.js';
import { KEY, ok, sendJson, startTestServer, type TestServer } from './kie-test-server.js';

let server: TestServer;
let client: KieClient;

beforeAll(async () => {
  server = await startTestServer();
  client = new KieClient({ apiKey: KEY, baseUrl: server.url, uploadBaseUrl: server.url, timeoutMs: 2000 });
});
afterAll(async () => {
  client.close();
  await server.close();
});

function record(overrides: Record<string, unknown>) {
  return {
    taskId: 'task-9',
    model: TOPAZ,
    state: 'success',
    param: JSON.stringify({ model: TOPAZ, input: { image_url: 'https://x/a.png', upscale_factor: '2' } }),
    resultJson: JSON.stringify({ resultUrls: ['https://tempfile.example/out.png'] }),
    failCode: null,
    failMsg: null,
    costTime: 12_345,
    createTime: 1_700_000_000_000,
    updateTime: 1_700_000_012_000,
    completeTime: 1_700_000_012_345,
    ...overrides,
  };
}

async function taskFrom(data: Record<string, unknown>) {
  server.handle((_req, res) => sendJson(res, 200, ok(data)));
  return client.getTask('task-9');
}

describe('getTask normalises recordInfo', () => {
  it('a successful task: urls, parsed param, times, cost', async () => {
    const info = await taskFrom(record({ creditsConsumed: 20, remainedCredits: 980 }));
    expect(info).toEqual({
      taskId: 'task-9',
      model: TOPAZ,
      state: 'success',
      rawState: 'success',
      param: { model: TOPAZ, input: { image_url: 'https://x/a.png', upscale_factor: '2' } },
      resultUrls: ['https://tempfile.example/out.png'],
      resultProblem: null,
      failCode: null,
      failMsg: null,
      costTimeMs: 12_345,
      kieCostTime: 12_345,
      creditsConsumed: 20,
      remainedCredits: 980,
      createTime: 1_700_000_000_000,
      updateTime: 1_700_000_012_000,
      completeTime: 1_700_000_012_345,
    });
  });

  const variants: [string, unknown, string[], string | null][] = [
    [
      'valid',
      '{"resultUrls":["https://a/1.png","https://a/2.png"]}',
      ['https://a/1.png', 'https://a/2.png'],
      null,
    ],
    ['an already-parsed object', { resultUrls: ['https://a/1.png'] }, ['https://a/1.png'], null],
    ['an empty string', '', [], 'resultJson is empty'],
    ['null', null, [], 'resultJson is empty'],
    ['absent', undefined, [], 'resultJson is empty'],
    ['not JSON', '{resultUrls: [', [], 'resultJson is not JSON'],
    ['JSON but not an object', '"https://a/1.png"', [], 'resultJson is not JSON'],
    ['without resultUrls', '{"urls":["https://a/1.png"]}', [], 'resultJson has no resultUrls'],
    ['with an empty resultUrls', '{"resultUrls":[]}', [], 'resultUrls is empty'],
    ['with only non-strings', '{"resultUrls":[null, 3, ""]}', [], 'resultUrls is empty'],
  ];
  it.each(variants)('resultJson %s on success', async (_label, resultJson, urls, problem) => {
    const info = await taskFrom(record({ resultJson }));
    expect(info.state).toBe('success');
    expect(info.resultUrls).toEqual(urls);
    expect(info.resultProblem).toBe(problem);
  });

  it.each(['waiting', 'queuing', 'generating', 'fail'])(
    'state %s has no results and no result problem',
    async (state) => {
      const info = await taskFrom(record({ state, resultJson: '' }));
      expect(info).toMatchObject({ state, resultUrls: [], resultProblem: null });
    },
  );

  it('param: empty, null and malformed are null; an object is kept', async () => {
    for (const param of ['', null, '{oops', undefined])
      expect((await taskFrom(record({ param }))).param).toBeNull();
    expect((await taskFrom(record({ param: { a: 1 } }))).param).toEqual({ a: 1 });
  });

  it('a failed task: failCode as a string whether kie sends a number or a string', async () => {
    const numeric = await taskFrom(
      record({ state: 'fail', resultJson: null, failCode: 500, failMsg: 'internal error' }),
    );
    expect(numeric).toMatchObject({
      state: 'fail',
      failCode: '500',
      failMsg: 'internal error',
      resultUrls: [],
    });
    const text = await taskFrom(record({ state: 'fail', failCode: '422', failMsg: 'image too large' }));
    expect(text).toMatchObject({ failCode: '422', failMsg: 'image too large' });
    const empty = await taskFrom(record({ state: 'fail', failCode: '', failMsg: '' }));
    expect(empty).toMatchObject({ failCode: null, failMsg: null });
  });

  it('credits: creditsConsumed, else consumeCredits, else null', async () => {
    expect((await taskFrom(record({ creditsConsumed: 10, consumeCredits: 99 }))).creditsConsumed).toBe(10);
    expect((await taskFrom(record({ consumeCredits: 40 }))).creditsConsumed).toBe(40);
    expect((await taskFrom(record({ creditsConsumed: 0 }))).creditsConsumed).toBe(0);
    expect((await taskFrom(record({}))).creditsConsumed).toBeNull();
    expect((await taskFrom(record({}))).remainedCredits).toBeNull();
  });

  it('absent numbers are null; numeric strings are numbers; task_id is accepted', async () => {
    const info = await taskFrom({
      task_id: 'task-9',
      state: 'GENERATING',
      costTime: '1500',
      createTime: 'soon',
    });
    expect(info).toMatchObject({
      taskId: 'task-9',
      model: '',
      state: 'generating',
      rawState: 'GENERATING',
      costTimeMs: null,
      kieCostTime: 1500,
      createTime: null,
      updateTime: null,
      completeTime: null,
    });
  });

  it('costTimeMs is completeTime - createTime in ms; kie`s costTime (whole seconds live) is kept raw as kieCostTime', async () => {
    // kie-samples 20: costTime 37 for a task whose completeTime - createTime is 37,409 ms.
    const live = await taskFrom(record({ costTime: 37, createTime: 1790068582661, completeTime: 1790068620070 }));
    expect(live).toMatchObject({ costTimeMs: 37_409, kieCostTime: 37 });
    expect(await taskFrom(record({ costTime: 37, completeTime: null }))).toMatchObject({ costTimeMs: null, kieCostTime: 37 });
    expect(await taskFrom(record({ costTime: undefined, createTime: 2000, completeTime: 1000 }))).toMatchObject({ costTimeMs: null, kieCostTime: null });
  });

  it.each([
    ['FAILED', 'fail'],
    ['error', 'fail'],
    ['Failure', 'fail'],
    ['SUCCEEDED', 'success'],
    ['completed', 'success'],
    ['Success', 'success'],
    ['pending', 'waiting'],
    ['', 'unknown'],
    ['PROCESSING', 'generating'],
    ['exploded', 'unknown'],
    [42, 'unknown'],
  ])('state %j reads as %s, the raw word kept', async (word, state) => {
    const info = await taskFrom(record({ state: word, resultJson: '{"resultUrls":["https://x/o.png"]}' }));
    expect(info.state).toBe(state);
    expect(info.rawState).toBe(typeof word === 'string' ? word : JSON.stringify(word));
  });

  it('a missing state, and data: null on a code-200 answer, read as unknown (still running)', async () => {
    const { state: _s, ...noState } = record({});
    expect(await taskFrom(noState)).toMatchObject({ state: 'unknown', rawState: null });
    server.handle((_req, res) => sendJson(res, 200, ok(null)));
    expect(await client.getTask('task-9')).toMatchObject({ taskId: 'task-9', state: 'unknown', rawState: null, resultUrls: [] });
  });

  it('falls back to the requested taskId when the record has none', () => {
    expect(parseTaskInfo({ state: 'queuing' }, 'asked-for').taskId).toBe('asked-for');
    expect(() => parseTaskInfo({ state: 'queuing' })).toThrow(/no taskId/);
  });
});
