/**
 * The shapes the kie.ai client takes and returns (KIE_API.md). Everything kie.ai sends is normalised here:
 * JSON strings are parsed, codes are strings, absent numbers are `null`, never `undefined`.
 */
import type { Agent as HttpAgent } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import type { Readable } from 'node:stream';
import type { ModelName } from './models.js';

/**
 * `waiting`, `queuing`, `generating`: keep polling. `success`, `fail`: terminal. `unknown`: kie's answer had no
 * state, or one this client does not recognise (see task-state.ts); treated as still running.
 */
export type TaskState = 'waiting' | 'queuing' | 'generating' | 'success' | 'fail' | 'unknown';
export const TASK_STATES: readonly TaskState[] = ['waiting', 'queuing', 'generating', 'success', 'fail', 'unknown'];
export const TERMINAL_STATES: readonly TaskState[] = ['success', 'fail'];

export function isTaskState(value: unknown): value is TaskState {
  return typeof value === 'string' && (TASK_STATES as readonly string[]).includes(value);
}

/** One task as recordInfo describes it, normalised. */
export interface TaskInfo {
  taskId: string;
  model: string;
  state: TaskState;
  /** kie's own `state` word as sent (`"FAILED"`, `"pending"`, `""`), kept for logs and records; null when absent. */
  rawState: string | null;
  /** The task's parameters, parsed from the JSON string kie.ai sends; null when empty, null or malformed. */
  param: unknown;
  /** The result URLs from `resultJson` when `state` is `success`; `[]` otherwise. */
  resultUrls: string[];
  /**
   * On `success` only: why `resultUrls` is unusable ("resultJson is empty", "resultJson is not JSON",
   * "resultJson has no resultUrls", "resultUrls is empty"); null otherwise. The caller records a failure.
   */
  resultProblem: string | null;
  /** kie's failure code, always as a string ("422", "500"); null when absent or empty. */
  failCode: string | null;
  failMsg: string | null;
  /**
   * How long the task ran, in milliseconds: `completeTime - createTime` when both are present (Unix ms, the reliable
   * figure per the recorded answers in kie-samples), else null. Never taken from `costTime`, whose unit varies.
   */
  costTimeMs: number | null;
  /**
   * kie's raw `costTime`, unit as reported: whole seconds in every live recording, milliseconds per the docs
   * (kie-samples README, 19/20/23/41). Kept for the record; null when absent.
   */
  kieCostTime: number | null;
  /** `creditsConsumed`, else the older `consumeCredits`; null when neither is present. */
  creditsConsumed: number | null;
  remainedCredits: number | null;
  /** Unix milliseconds. */
  createTime: number | null;
  updateTime: number | null;
  completeTime: number | null;
}

/** The answer of the three upload endpoints: give `downloadUrl` to the model. */
export interface UploadedFile {
  fileName: string;
  filePath: string;
  downloadUrl: string;
  fileSize: number | null;
  mimeType: string | null;
  uploadedAt: string | null;
}

export interface CreateTaskRequest {
  model: ModelName;
  /** The model's `input`, as `MODELS[model].buildInput()` makes it (topaz's factor is a string). */
  input: Record<string, string>;
  /** Where kie.ai POSTs the result; omitted from the body when undefined. */
  callBackUrl?: string | undefined;
}

export interface UploadOptions {
  /** Folder on kie's file host. @defaultValue the client's `uploadPath` option */
  uploadPath?: string | undefined;
  /** Name kie stores the file under; sent only when given. */
  fileName?: string | undefined;
}

export interface Base64UploadOptions extends UploadOptions {
  /** Makes a data URL of plain base64 (`data:<mimeType>;base64,...`); ignored for data URLs. */
  mimeType?: string | undefined;
}

/** A file to upload: a local path, or content with the name to give it. */
export type UploadSource = string | { data: Buffer | Readable; fileName: string };

export interface KieClientOptions {
  /** Bearer key. Never logged, never part of an error message. Calls fail with `KieAuthError` when undefined. */
  apiKey: string | undefined;
  /** API base, e.g. `https://api.kie.ai` (`config.kieBaseUrl`). A trailing slash is ignored. */
  baseUrl: string;
  /** File upload base, e.g. `https://kieai.redpandaai.co` (`config.kieUploadBaseUrl`). */
  uploadBaseUrl: string;
  /** Deadline of one whole API exchange (connect, send, answer), in ms (`config.requestTimeoutMs`). */
  timeoutMs: number;
  /** Deadline of one upload exchange, in ms. @defaultValue `5 * timeoutMs` */
  uploadTimeoutMs?: number | undefined;
  /** Sent on every call (a bare client can get Cloudflare's 403). @defaultValue `kie-upscale-queue/<version> (+node)` */
  userAgent?: string | undefined;
  /** Agent for `http:` bases. @defaultValue a keep-alive agent owned (and closed) by the client */
  httpAgent?: HttpAgent | undefined;
  /** Agent for `https:` bases. @defaultValue a keep-alive agent owned (and closed) by the client */
  httpsAgent?: HttpsAgent | undefined;
  /** Keep sockets open between calls in the agents the client creates. @defaultValue `true` */
  keepAlive?: boolean | undefined;
  /**
   * Idle keep-alive sockets are closed after this many ms, below common server keep-alive timeouts
   * (5 s), so a request is never written to a socket the server is closing. @defaultValue `4000`
   */
  freeSocketTimeoutMs?: number | undefined;
  /** Largest API answer read; a bigger one is a `KieBadResponseError`. @defaultValue `10 MiB` */
  maxResponseBytes?: number | undefined;
  /** Largest upload body sent (multipart or JSON); bigger is a `KieValidationError`. @defaultValue `64 MiB` */
  maxUploadBytes?: number | undefined;
  /** Default folder on kie's file host. @defaultValue `kie-upscale-queue` */
  uploadPath?: string | undefined;
}
