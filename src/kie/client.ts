/**
 * The typed kie.ai client (axios). Every call is one exchange: no retries here (the queue layer owns retry
 * policy, and createTask must never be repeated behind its back). Answers are read as text and parsed here,
 * so every failure, whatever its shape, becomes a `KieError` through the one mapping, `kieErrorFrom()`.
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { Readable } from 'node:stream';
import axios, { type AxiosInstance, type AxiosResponse } from 'axios';
import type { Config } from '../config/index.js';
import { redactSecrets, registerSecret } from '../log.js';
import { type Envelope, InputError, readEnvelope, ShapeError, transportFailure } from './envelope.js';
import { type KieError, type KieFailure, kieErrorFrom } from './errors.js';
import { isModelName } from './models.js';
import { parseRetryAfter } from './retry-after.js';
import { parseCreated, parseCredits, parseTaskInfo } from './task-info.js';
import type {
  Base64UploadOptions,
  CreateTaskRequest,
  KieClientOptions,
  TaskInfo,
  UploadedFile,
  UploadOptions,
  UploadSource,
} from './types.js';
import { base64Body, multipartBody, parseUploaded, uploadFields, urlBody } from './uploads.js';
import { DEFAULT_USER_AGENT } from './version.js';

const MiB = 1024 * 1024;
/** Largest JSON body the client sends to the API (createTask and friends are a few hundred bytes). */
const MAX_API_REQUEST_BYTES = 1 * MiB;

export const PATHS = {
  createTask: '/api/v1/jobs/createTask',
  recordInfo: '/api/v1/jobs/recordInfo',
  credit: '/api/v1/chat/credit',
  downloadUrl: '/api/v1/common/download-url',
  streamUpload: '/api/file-stream-upload',
  base64Upload: '/api/file-base64-upload',
  urlUpload: '/api/file-url-upload',
} as const;

/** Per-call options. */
export interface CallOptions {
  /**
   * Aborts the call (a worker's drain deadline). The call then fails with a `KieNetworkError` saying it was
   * aborted, `maybeSent: true` (the request may have reached kie.ai).
   */
  signal?: AbortSignal | undefined;
}

interface Exchange {
  host: 'api' | 'upload';
  method: 'GET' | 'POST';
  path: string;
  params?: Record<string, string>;
  data?: unknown;
  headers?: Record<string, string | number>;
  signal?: AbortSignal | undefined;
}

export class KieClient {
  readonly #apiKey: string | undefined;
  readonly #http: AxiosInstance;
  readonly #baseUrl: string;
  readonly #uploadBaseUrl: string;
  readonly #timeoutMs: number;
  readonly #uploadTimeoutMs: number;
  readonly #maxUploadBytes: number;
  readonly #uploadPath: string;
  /** Agents this client created, destroyed by `close()`; agents passed in belong to the caller. */
  readonly #ownAgents: (HttpAgent | HttpsAgent)[] = [];

  constructor(opts: KieClientOptions) {
    if (!(opts.timeoutMs > 0)) throw new RangeError('timeoutMs must be a positive number of milliseconds');
    this.#apiKey = opts.apiKey === '' ? undefined : opts.apiKey;
    registerSecret(this.#apiKey);
    this.#baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.#uploadBaseUrl = opts.uploadBaseUrl.replace(/\/+$/, '');
    this.#timeoutMs = opts.timeoutMs;
    this.#uploadTimeoutMs = opts.uploadTimeoutMs ?? opts.timeoutMs * 5;
    this.#maxUploadBytes = opts.maxUploadBytes ?? 64 * MiB;
    this.#uploadPath = opts.uploadPath ?? 'kie-upscale-queue';
    const agentOptions = { keepAlive: opts.keepAlive ?? true, timeout: opts.freeSocketTimeoutMs ?? 4000 };
    const httpAgent = opts.httpAgent ?? this.#own(new HttpAgent(agentOptions));
    const httpsAgent = opts.httpsAgent ?? this.#own(new HttpsAgent(agentOptions));
    this.#http = axios.create({
      httpAgent,
      httpsAgent,
      headers: { 'User-Agent': opts.userAgent ?? DEFAULT_USER_AGENT, Accept: 'application/json' },
      validateStatus: () => true,
      responseType: 'text',
      responseEncoding: 'utf8',
      transformResponse: [(data: unknown) => data],
      maxContentLength: opts.maxResponseBytes ?? 10 * MiB,
      maxRedirects: 0,
    });
  }

  /** A client for the configured kie.ai (key, base URLs, request timeout). */
  static fromConfig(config: Config, overrides: Partial<KieClientOptions> = {}): KieClient {
    return new KieClient({
      apiKey: config.apiKey,
      baseUrl: config.kieBaseUrl,
      uploadBaseUrl: config.kieUploadBaseUrl,
      timeoutMs: config.requestTimeoutMs,
      ...overrides,
    });
  }

  /** Submits one task. Not idempotent: a failure that may have reached kie.ai must not be blindly repeated. */
  async createTask(req: CreateTaskRequest, opts: CallOptions = {}): Promise<{ taskId: string }> {
    const endpoint = `POST ${PATHS.createTask}`;
    if (!isModelName(req.model))
      throw this.#fail(endpoint, {
        kind: 'invalid-request',
        message: `unknown model ${JSON.stringify(req.model)}`,
      });
    if (!isStringRecord(req.input))
      throw this.#fail(endpoint, { kind: 'invalid-request', message: 'input must map names to strings' });
    const data: Record<string, unknown> = { model: req.model };
    if (req.callBackUrl !== undefined) data.callBackUrl = req.callBackUrl;
    data.input = req.input;
    return this.#call({ host: 'api', method: 'POST', path: PATHS.createTask, data, signal: opts.signal }, (env) =>
      parseCreated(env.data),
    );
  }

  /** recordInfo of one task. An unknown taskId throws `KieUnknownTaskError` (a `KieValidationError`). */
  async getTask(taskId: string, opts: CallOptions = {}): Promise<TaskInfo> {
    if (typeof taskId !== 'string' || taskId.trim() === '') {
      throw this.#fail(`GET ${PATHS.recordInfo}`, { kind: 'invalid-request', message: 'taskId is empty' });
    }
    const id = taskId.trim();
    const ex: Exchange = { host: 'api', method: 'GET', path: PATHS.recordInfo, params: { taskId: id }, signal: opts.signal };
    return this.#call(ex, (env) =>
      parseTaskInfo(env.data, id),
    );
  }

  /** The account's remaining credits. */
  async getCredits(): Promise<number> {
    return this.#call({ host: 'api', method: 'GET', path: PATHS.credit }, (env) => parseCredits(env.data));
  }

  /** Turns a kie.ai result URL into a download link valid for about 20 minutes. */
  async getDownloadUrl(url: string, opts: CallOptions = {}): Promise<string> {
    const ex: Exchange = { host: 'api', method: 'POST', path: PATHS.downloadUrl, data: { url }, signal: opts.signal };
    return this.#call(ex, (env) => {
      const d = env.data;
      if (typeof d === 'string' && d.trim() !== '') return d;
      if (d !== null && typeof d === 'object') {
        const inner = (d as Record<string, unknown>).downloadUrl ?? (d as Record<string, unknown>).url;
        if (typeof inner === 'string' && inner.trim() !== '') return inner;
      }
      throw new ShapeError('data is not a download URL');
    });
  }

  /** Uploads a local file (streamed) or in-memory content as multipart to the upload host. */
  async uploadFileStream(source: UploadSource, opts: UploadOptions & CallOptions = {}): Promise<UploadedFile> {
    return this.#call(
      { host: 'upload', method: 'POST', path: PATHS.streamUpload, signal: opts.signal },
      parseUploaded,
      async () => {
        const mp = await multipartBody(source, uploadFields(opts, this.#uploadPath), this.#maxUploadBytes);
        const headers: Record<string, string | number> = { 'Content-Type': mp.contentType };
        if (mp.contentLength !== null) headers['Content-Length'] = mp.contentLength;
        return { data: mp.body, headers };
      },
    );
  }

  /** Uploads base64 content (a Buffer, plain base64 or a data URL). Meant for small files. */
  async uploadBase64(data: Buffer | string, opts: Base64UploadOptions = {}): Promise<UploadedFile> {
    return this.#call({ host: 'upload', method: 'POST', path: PATHS.base64Upload }, parseUploaded, () =>
      Promise.resolve({ data: base64Body(data, opts, this.#uploadPath) }),
    );
  }

  /** Has kie's file host fetch a URL (it gives up after 30 s). */
  async uploadFromUrl(fileUrl: string, opts: UploadOptions = {}): Promise<UploadedFile> {
    return this.#call({ host: 'upload', method: 'POST', path: PATHS.urlUpload }, parseUploaded, () =>
      Promise.resolve({ data: urlBody(fileUrl, opts, this.#uploadPath) }),
    );
  }

  /** Closes the idle sockets of the agents this client created. The client must not be used afterwards. */
  close(): void {
    for (const agent of this.#ownAgents) agent.destroy();
  }

  #own<A extends HttpAgent | HttpsAgent>(agent: A): A {
    this.#ownAgents.push(agent);
    return agent;
  }

  #scrub = (text: string): string => {
    const key = this.#apiKey;
    return redactSecrets(key ? text.split(key).join('[redacted]') : text);
  };

  #fail(endpoint: string, failure: KieFailure): KieError {
    return kieErrorFrom(endpoint, { ...failure, message: this.#scrub(failure.message) });
  }

  /**
   * One exchange: builds the body (`prepare`, for uploads), sends it under a whole-exchange deadline, reads
   * the envelope and hands `data` to `parse`. Every failure leaves as a `KieError`.
   */
  async #call<T>(
    ex: Exchange,
    parse: (env: Envelope) => T,
    prepare?: () => Promise<Pick<Exchange, 'data' | 'headers'>>,
  ): Promise<T> {
    const endpoint = `${ex.method} ${ex.path}`;
    if (this.#apiKey === undefined) {
      throw this.#fail(endpoint, {
        kind: 'code',
        code: 401,
        httpStatus: null,
        message: 'no API key configured (set KIE_API_KEY)',
      });
    }
    const upload = ex.host === 'upload';
    const timeoutMs = upload ? this.#uploadTimeoutMs : this.#timeoutMs;
    let body: Pick<Exchange, 'data' | 'headers'> = ex;
    if (prepare) {
      try {
        body = await prepare();
      } catch (e) {
        if (e instanceof InputError)
          throw this.#fail(endpoint, { kind: 'invalid-request', message: e.message });
        throw e;
      }
    }
    // One controller per exchange, its timer cleared at the end: AbortSignal.timeout would leave a timer pending
    // for the whole timeout after every answer, and AbortSignal.any ties each exchange to the caller's long-lived signal.
    const controller = new AbortController();
    let deadlineHit = false;
    const timer = setTimeout(() => {
      deadlineHit = true;
      controller.abort(new DOMException('the whole-exchange deadline passed', 'TimeoutError'));
    }, timeoutMs);
    const callerAborted = (): void => controller.abort(ex.signal?.reason);
    if (ex.signal?.aborted) callerAborted();
    else ex.signal?.addEventListener('abort', callerAborted, { once: true });
    const signal = controller.signal;
    let res: AxiosResponse<unknown>;
    try {
      res = await this.#http.request({
        method: ex.method,
        url: (upload ? this.#uploadBaseUrl : this.#baseUrl) + ex.path,
        params: ex.params ?? {},
        data: body.data,
        headers: { ...body.headers, Authorization: `Bearer ${this.#apiKey}` },
        timeout: timeoutMs,
        signal,
        maxBodyLength: upload ? this.#maxUploadBytes : MAX_API_REQUEST_BYTES,
      });
    } catch (err) {
      if (ex.signal?.aborted && !deadlineHit) {
        throw this.#fail(endpoint, { kind: 'network', message: 'the call was aborted by the caller before an answer', maybeSent: true, cause: err });
      }
      throw this.#fail(
        endpoint,
        transportFailure(err, { deadlineHit, timeoutMs, scrub: this.#scrub }),
      );
    } finally {
      clearTimeout(timer);
      ex.signal?.removeEventListener('abort', callerAborted);
      // An upload body the server did not read to the end (early answer, failure) is released here.
      if (body.data instanceof Readable && !body.data.readableEnded) body.data.destroy();
    }
    const text =
      typeof res.data === 'string' ? res.data : Buffer.isBuffer(res.data) ? res.data.toString('utf8') : '';
    const read = readEnvelope(res.status, text);
    if (!read.ok) {
      const f = read.failure;
      const retryAfterMs = parseRetryAfter(res.headers['retry-after'] as string | undefined);
      throw this.#fail(endpoint, f.kind === 'code' || f.kind === 'bad-response' ? { ...f, retryAfterMs } : f);
    }
    try {
      return parse(read.envelope);
    } catch (e) {
      if (e instanceof ShapeError)
        throw this.#fail(endpoint, { kind: 'bad-response', httpStatus: res.status, message: e.message });
      throw e;
    }
  }
}

function isStringRecord(value: unknown): value is Record<string, string> {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.values(value as Record<string, unknown>).every((v) => typeof v === 'string')
  );
}
