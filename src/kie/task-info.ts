/**
 * Parsers of the `data` of createTask, recordInfo and the credit call. They normalise what kie.ai is known to
 * vary (JSON strings, numeric or string codes, old field names) and throw `ShapeError` only when the answer
 * cannot be used at all (no taskId, no state).
 */
import { isRecord, ShapeError } from './envelope.js';
import { readState } from './task-state.js';
import type { TaskInfo } from './types.js';

/** `data.taskId` or `data.task_id`: a non-empty string (a number is accepted and turned into one). */
export function taskIdOf(data: unknown): string | null {
  if (!isRecord(data)) return null;
  for (const key of ['taskId', 'task_id'] as const) {
    const v = data[key];
    if (typeof v === 'string' && v.trim() !== '') return v.trim();
    if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  }
  return null;
}

/** createTask's `data`: `{ taskId }` (or `{ task_id }`). */
export function parseCreated(data: unknown): { taskId: string } {
  if (!isRecord(data)) throw new ShapeError(`data is ${describe(data)}, not an object with a taskId`);
  const taskId = taskIdOf(data);
  if (taskId === null) throw new ShapeError('data has no taskId');
  return { taskId };
}

/** The credit call's `data`: a number (a numeric string is accepted). */
export function parseCredits(data: unknown): number {
  const n = numberOf(data);
  if (n === null) throw new ShapeError(`credits are ${describe(data)}, not a number`);
  return n;
}

/** A finite number, or a string holding one; null otherwise. */
export function numberOf(value: unknown): number | null {
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value === 'string' && value.trim() !== '') {
    const n = Number(value);
    return Number.isFinite(n) ? n : null;
  }
  return null;
}

function stringOf(value: unknown): string | null {
  if (typeof value === 'string') return value.trim() === '' ? null : value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return null;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

/** A field kie.ai sends as a JSON string (an already-parsed object is taken as is). */
function jsonField(value: unknown): { ok: true; value: unknown } | { ok: false; empty: boolean } {
  if (value === null || value === undefined) return { ok: false, empty: true };
  if (typeof value !== 'string') return { ok: true, value };
  if (value.trim() === '') return { ok: false, empty: true };
  try {
    return { ok: true, value: JSON.parse(value) as unknown };
  } catch {
    return { ok: false, empty: false };
  }
}

/** resultUrls of a successful task, or why there are none. */
function results(resultJson: unknown): { urls: string[]; problem: string | null } {
  const parsed = jsonField(resultJson);
  if (!parsed.ok)
    return { urls: [], problem: parsed.empty ? 'resultJson is empty' : 'resultJson is not JSON' };
  if (!isRecord(parsed.value)) return { urls: [], problem: 'resultJson is not JSON' };
  const list = parsed.value.resultUrls;
  if (!Array.isArray(list)) return { urls: [], problem: 'resultJson has no resultUrls' };
  const urls = list.filter((u): u is string => typeof u === 'string' && u.trim() !== '');
  return urls.length > 0 ? { urls, problem: null } : { urls: [], problem: 'resultUrls is empty' };
}

/** `completeTime - createTime` in ms when both are plausible Unix-ms times, else null. */
export function durationOf(createTime: number | null, completeTime: number | null): number | null {
  if (createTime === null || completeTime === null || createTime <= 0 || completeTime < createTime) return null;
  return completeTime - createTime;
}

/**
 * recordInfo's `data` (also the `data` of a callback). `requestedTaskId` stands in when the answer omits its own.
 * `data: null` (seen live on a code-200 answer while a task runs) is a task in state `unknown`; so is a missing or
 * unrecognised `state` (task-state.ts). Throws `ShapeError` only when `data` is neither null nor an object, or when
 * no taskId is known at all.
 */
export function parseTaskInfo(data: unknown, requestedTaskId?: string): TaskInfo {
  if (data === null || data === undefined) {
    if (requestedTaskId === undefined) throw new ShapeError('data is null and no taskId was asked for');
    return parseTaskInfo({}, requestedTaskId);
  }
  if (!isRecord(data)) throw new ShapeError(`data is ${describe(data)}, not a task record`);
  const taskId = taskIdOf(data) ?? requestedTaskId;
  if (taskId === undefined) throw new ShapeError('data has no taskId');
  const { state, rawState } = readState(data.state);
  const param = jsonField(data.param);
  const outcome = state === 'success' ? results(data.resultJson ?? data.response) : { urls: [], problem: null };
  const createTime = numberOf(data.createTime);
  const completeTime = numberOf(data.completeTime);
  return {
    taskId,
    model: typeof data.model === 'string' ? data.model : '',
    state,
    rawState,
    param: param.ok ? param.value : null,
    resultUrls: outcome.urls,
    resultProblem: outcome.problem,
    failCode: stringOf(data.failCode)?.trim() ?? null,
    failMsg: stringOf(data.failMsg),
    costTimeMs: durationOf(createTime, completeTime),
    kieCostTime: numberOf(data.costTime),
    creditsConsumed: numberOf(data.creditsConsumed) ?? numberOf(data.consumeCredits),
    remainedCredits: numberOf(data.remainedCredits),
    createTime,
    updateTime: numberOf(data.updateTime),
    completeTime,
  };
}
