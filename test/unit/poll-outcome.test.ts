/**
 * What a failed status check means for the poll lane (issue 11 points 1 and 3), through the real client against a
 * local server: kie's own code is what gets recorded, never the HTTP status in its place (the example: an
 * unreadable HTTP-200 answer recorded with failCode "200"); account refusals pause; "recordInfo is null" is not yet
 * visible; a 501 without a task record is kie's verdict.
 */
import { describe, expect, it } from 'vitest';
import { KieClient } from '../../src/kie/index.js';
import { pollErrorCode, pollOutcomeFor } from '../../src/queue/poll-outcome.js';
import { closedPort, KEY, sendJson, sendText, serverAndClient } from './kie-test-server.js';

const kie = serverAndClient();

async function checkError(answer: (res: Parameters<typeof sendJson>[0]) => void): Promise<unknown> {
  kie.server.handle((_req, res) => answer(res));
  return kie.client.getTask('task-1').then(
    () => {
      throw new Error('expected the status check to fail');
    },
    (e: unknown) => e,
  );
}

describe('a failed status check', () => {
  it('an unreadable HTTP-200 answer is recorded as bad-answer, not "200"', async () => {
    const e = await checkError((res) => sendText(res, 200, '{"code":200,"msg":"success","data":{"taskId":"task-1","sta', 'application/json'));
    expect(pollErrorCode(e)).toBe('bad-answer');
    expect(pollOutcomeFor(e)).toMatchObject({ kind: 'retry' });
  });

  it('kie`s envelope code is what is recorded: a 500 in an HTTP-200 envelope is "500"', async () => {
    const e = await checkError((res) => sendJson(res, 200, { code: 500, msg: 'Server Error', data: null }));
    expect(pollErrorCode(e)).toBe('500');
  });

  it('no answer at all is "network"', async () => {
    const down = new KieClient({ apiKey: KEY, baseUrl: `http://127.0.0.1:${await closedPort()}/`, uploadBaseUrl: 'http://127.0.0.1:9', timeoutMs: 2000 });
    try {
      const e = await down.getTask('task-1').catch((err: unknown) => err);
      expect(pollErrorCode(e)).toBe('network');
    } finally {
      down.close();
    }
  });

  it('"recordInfo is null" (422, HTTP 200) is a task not visible yet', async () => {
    const e = await checkError((res) => sendJson(res, 200, { code: 422, msg: 'recordInfo is null', data: null }));
    expect(pollOutcomeFor(e)).toEqual({ kind: 'not-visible', reason: '422 recordInfo is null' });
  });

  it('a 501 without a task record is kie`s verdict on the task, with its message', async () => {
    const e = await checkError((res) => sendJson(res, 200, { code: 501, msg: 'Playground task failed.', data: null }));
    expect(pollOutcomeFor(e)).toEqual({ kind: 'task-failed', failCode: '501', failMsg: 'Playground task failed.' });
  });

  it.each([
    [401, 'You do not have access permissions', 'auth'],
    [402, 'Credits insufficient', 'credits'],
    [433, 'The current number of points used by apiKey has exceeded the daily limit', 'daily-limit'],
  ] as const)('%i met while polling pauses (%s)', async (code, msg, reason) => {
    const e = await checkError((res) => sendJson(res, 200, { code, msg, data: null }));
    expect(pollOutcomeFor(e)).toMatchObject({ kind: 'pause', reason, code: String(code) });
  });
});
