/**
 * Replays every answer recorded in ../shared/kie-samples (live recordings, the docs' examples, other clients'
 * fixtures) through the real client over a real local HTTP server, then through the queue-outcome mapping, and
 * checks the outcome a careful operator would want for each file. A sample added to the folder without an expected
 * outcome here fails the test, so the table always covers the whole folder.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KieClient, parseCallbackBody } from '../../src/kie/index.js';
import { outcomeFor } from '../../src/queue/outcome.js';
import { pollOutcomeFor } from '../../src/queue/poll-outcome.js';
import { KEY, sendText, startTestServer, type TestServer } from './kie-test-server.js';

const DIR = join(process.cwd(), '..', 'shared', 'kie-samples');

interface Sample {
  endpoint: 'createTask' | 'recordInfo' | 'callback' | 'upload' | 'credit' | 'download-url';
  http_status: number | null;
  headers?: Record<string, string>;
  body: unknown;
}

/**
 * The outcome per file, as one line: `created <taskId>`, `pause <code>`, `slow-down` (with `retry-after <ms>`),
 * `retry <code> <msg>`, `fail <code> <msg>`, `not-visible`, `task-failed <code> <msg>`, `running <raw state>`,
 * `success <n> urls <ms> ms kieCostTime <raw>`, `failed-task <failCode> <failMsg>`, `error: <clear reason>`,
 * `callback <taskId> <state> <code>`, `uploaded <downloadUrl>`, `link <url>`.
 */
const EXPECTED: Record<string, string | RegExp> = {
  '01-createtask-docs-message-key.json': 'created task_12345678',
  '02-createtask-docs-topaz-image-upscale.json': 'created task_topaz_1765176093786',
  '03-createtask-docs-recraft-crisp-upscale.json': 'created task_recraft_1765177373893',
  '04-createtask-real-msg-create-task-success.json': 'created 40e37c7d93fdb58cce90aba8c45390ac',
  '05-createtask-docs-401-access-permissions.json': 'pause 401',
  '06-createtask-real-401-in-http200.json': 'pause 401',
  '07-createtask-real-402-insufficient-credits.json': 'pause 402',
  '08-createtask-real-433-daily-key-limit.json': 'pause 433',
  // Per image, kie's 422 fails it; the same refusal for many images trips the breaker (submit-breaker tests).
  '09-createtask-real-422-page-not-published.json': 'fail 422 The page does not exist or is not published',
  '11-createtask-real-500-in-200-output-format.json': 'retry 500 output_format is not within the range of allowed options',
  '12-createtask-real-500-field-required-log.json': 'retry 500 This field is required',
  '14-createtask-support-email-extra-fields.json': 'created 7ac3c1b02f054e39a84c1b14737712f4',
  '15-recordinfo-docs-success-message-key.json': 'success 1 urls 32000 ms kieCostTime null',
  '16-recordinfo-docs-openapi-success-msg-costtime.json': 'success 1 urls 32000 ms kieCostTime 15000',
  '17-recordinfo-docs-nano-banana-edit-message-costtime-zero.json': 'success 1 urls 32000 ms kieCostTime 0',
  '18-recordinfo-docs-fail-failcode-string-resultjson-empty.json': 'failed-task 422 Invalid prompt: prompt contains prohibited content',
  '19-recordinfo-real-zimage-legacy-fields-float-credits.json': 'success 1 urls 5227 ms kieCostTime 4 credits 0.8',
  '20-recordinfo-real-seedream5-lite-i2i-float-credits.json': 'success 1 urls 37409 ms kieCostTime 37 credits 5.5',
  '23-recordinfo-real-nano-banana-param-not-double-encoded.json': 'success 1 urls 8981 ms kieCostTime 8',
  // Log fragments and partial pastes: a clear error (retried by the poll lane), never a crash.
  '24-recordinfo-real-zimage-waiting-log-fragments.json': /^error: answer is not JSON/,
  '25-recordinfo-real-waiting-empty-resultjson-fragment.json': /^error: answer is not an envelope \(no code\)/,
  '26-recordinfo-real-processing-data-null.json': /^error: answer is not JSON/,
  '27-recordinfo-real-fail-failcode-500-fragment.json': /^error: answer is not JSON/,
  '28-recordinfo-real-422-unknown-taskid-http200.json': 'not-visible',
  '29-recordinfo-docs-422-recordinfo-null.json': 'not-visible',
  '30-recordinfo-docs-404-task-not-found.json': 'fail 404 Task not found',
  '31-recordinfo-http404-wrong-path-no-envelope.json': 'fail 404 HTTP 404',
  '32-recordinfo-docs-400-missing-taskid.json': 'fail 400 taskId parameter is required',
  '33-recordinfo-docs-401.json': 'pause 401',
  '34-recordinfo-docs-429-rate-limit.json': 'slow-down retry-after null',
  '35-recordinfo-docs-500-data-null.json': /^retry 500 Server Error/,
  '37-recordinfo-mock-alfman99-501-in-http200.json': 'task-failed 501 Generation Failed',
  '38-recordinfo-mock-alfman99-429-retry-after.json': 'slow-down retry-after 3000',
  // Callbacks: the parser's verdict (the receiver still promotes an unreadable one by its URL token).
  '40-callback-real-fail-501-failcode-422-no-failmsg.json': 'error: callback body is not JSON',
  '41-callback-docs-success-trailing-commas.json': 'error: callback body is not JSON',
  '42-callback-docs-failure-code-501-resultjson-null.json': 'error: callback body is not JSON',
  '44-callback-docs-old-failure-no-resultjson-key.json': 'callback bd3a37c523149e4adf45a3ddb5faf1a8 fail 501',
  '47-callback-docs-webhook-verification-example-request.json': 'error: callback body is not JSON',
  '48-upload-real-verified-nested-success.json': 'uploaded https://tempfile.redpandaai.co/kieai/100001/kie-studio/1788331086662-khed0yx8az.png',
  '49-upload-real-stream-nested-success.json': 'uploaded https://tempfile.redpandaai.co/kieai/100001/images/user-uploads/2way-person1.jpg',
  '50-upload-real-sibling-sunoapi-stream.json': 'uploaded https://tempfile.redpandaai.co/sunoapiorg/100001/audio-samples/test-audio-1778660836588.mp3',
  '51-upload-docs-stream-success.json': 'uploaded https://tempfile.redpandaai.co/xxx/images/user-uploads/uploaded-image.png',
  '52-upload-docs-quickstart-different-shape.json': 'uploaded https://kieai.redpandaai.co/download/file_abc123456',
  '54-download-url-docs-bare-string.json': 'link https://tempfile.1f6cxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxbd98',
};

const files = readdirSync(DIR).filter((f) => f.endsWith('.json')).sort();

function describeOutcome(o: ReturnType<typeof pollOutcomeFor>): string {
  switch (o.kind) {
    case 'pause':
      return `pause ${o.code}`;
    case 'slow-down':
      return `slow-down retry-after ${o.retryAfterMs}`;
    case 'retry':
      return `retry ${o.reason}`;
    case 'fail':
      return `fail ${o.failCode} ${o.failMsg}`;
    case 'not-visible':
      return 'not-visible';
    case 'task-failed':
      return `task-failed ${o.failCode} ${o.failMsg}`;
  }
}

function errorLine(e: unknown, map: (e: unknown) => ReturnType<typeof pollOutcomeFor>): string {
  const name = (e as { name?: string }).name;
  if (name === 'KieBadResponseError') return `error: ${(e as { kieMessage: string }).kieMessage}`;
  return describeOutcome(map(e));
}

let server: TestServer;
let client: KieClient;
let current: Sample;

beforeAll(async () => {
  server = await startTestServer((_req, res) => {
    const s = current;
    const status = s.http_status ?? 200;
    const headers: Record<string, string> = { ...(s.headers ?? {}) };
    const text = s.body === null ? '' : typeof s.body === 'string' ? s.body : JSON.stringify(s.body);
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    sendText(res, status, text, headers['Content-Type'] ?? 'application/json');
  });
  client = new KieClient({ apiKey: KEY, baseUrl: server.url, uploadBaseUrl: server.url, timeoutMs: 10_000 });
});

afterAll(async () => {
  client.close();
  await server.close();
});

async function replay(sample: Sample): Promise<string> {
  current = sample;
  switch (sample.endpoint) {
    case 'createTask':
      try {
        const { taskId } = await client.createTask({ model: 'topaz/image-upscale', input: { image_url: 'https://x/a.png', upscale_factor: '2' } });
        return `created ${taskId}`;
      } catch (e) {
        return errorLine(e, outcomeFor);
      }
    case 'recordInfo':
      try {
        const t = await client.getTask('asked-for');
        if (t.state === 'success') {
          const credits = t.creditsConsumed === null ? '' : ` credits ${t.creditsConsumed}`;
          return `success ${t.resultUrls.length} urls ${t.costTimeMs} ms kieCostTime ${t.kieCostTime}${credits}`;
        }
        if (t.state === 'fail') return `failed-task ${t.failCode} ${t.failMsg}`;
        return `running ${t.rawState}`;
      } catch (e) {
        return errorLine(e, pollOutcomeFor);
      }
    case 'callback':
      try {
        const c = parseCallbackBody(typeof sample.body === 'string' ? sample.body : JSON.stringify(sample.body));
        return `callback ${c.taskId} ${c.state} ${c.code}`;
      } catch (e) {
        return `error: ${(e as { kieMessage: string }).kieMessage}`;
      }
    case 'upload':
      try {
        return `uploaded ${(await client.uploadFromUrl('https://x/a.png')).downloadUrl}`;
      } catch (e) {
        return errorLine(e, outcomeFor);
      }
    case 'download-url':
      try {
        return `link ${await client.getDownloadUrl('https://x/r.png')}`;
      } catch (e) {
        return errorLine(e, outcomeFor);
      }
    case 'credit':
      try {
        return `credits ${await client.getCredits()}`;
      } catch (e) {
        return errorLine(e, outcomeFor);
      }
  }
}

describe('every recorded kie.ai answer in ../shared/kie-samples', () => {
  it('has an expected outcome for every file (and no stale entries)', () => {
    expect(files.length).toBeGreaterThan(0);
    expect(files.filter((f) => !(f in EXPECTED))).toEqual([]);
    expect(Object.keys(EXPECTED).filter((f) => !files.includes(f))).toEqual([]);
  });

  it.each(files)('%s', async (file) => {
    const sample = JSON.parse(readFileSync(join(DIR, file), 'utf8')) as Sample;
    const got = await replay(sample);
    const want = EXPECTED[file];
    if (want instanceof RegExp) expect(got).toMatch(want);
    else expect(got).toBe(want);
  });
});
