/**
 * A simulated task and the three ways it is shown: recordInfo's `data`, the callback body, and the
 * `SimTaskRecord` tests read from `tasks()` / `GET /sim/tasks`.
 */

export type TaskState = 'waiting' | 'queuing' | 'generating' | 'success' | 'fail';

/** What tests see of a task. Times are Unix ms. */
export interface SimTaskRecord {
  taskId: string;
  model: string;
  /** The input image URL as sent (input.image_url or input.image). */
  input: string;
  /** The topaz factor as sent ("1", "2", "4", "8"); null for recraft. */
  factor: string | null;
  /** The createTask body as JSON (recordInfo's `param`). */
  param: string;
  callBackUrl: string | null;
  state: TaskState;
  failCode: string | null;
  failMsg: string | null;
  resultUrls: string[];
  inputWidth: number;
  inputHeight: number;
  /** Size of the output; null until success. */
  outputWidth: number | null;
  outputHeight: number | null;
  createdAt: number;
  updatedAt: number;
  /**
   * The latency drawn for the task at creation, real ms (already time-scaled): createdAt → when it is due to end.
   * `completedAt − createdAt` adds the upscale itself (and its wait for a free sharp slot) to it.
   */
  latencyMs: number;
  completedAt: number | null;
  /** The price reserved at creation. */
  price: number;
  /** Credits the task cost: its price on success, 0 otherwise. */
  creditsConsumed: number;
  /** Callback POSTs made for this task (a duplicate counts twice). */
  callbacksSent: number;
}

/** The simulator's own view of a task: the record plus its schedule. */
export interface SimTask extends Omit<SimTaskRecord, 'state' | 'updatedAt'> {
  /** Reports odd state words (SimOptions.oddStates). */
  odd: boolean;
  /** Set once the task ended; before that the state follows the schedule. */
  final: 'success' | 'fail' | null;
  queuingAt: number;
  generatingAt: number;
  /** When generation is due to end (the upscale itself may take a little longer). */
  dueAt: number;
}

/** The state of `task` at `now` (Unix ms). */
export function stateAt(task: SimTask, now: number): TaskState {
  if (task.final) return task.final;
  if (now < task.queuingAt) return 'waiting';
  if (now < task.generatingAt) return 'queuing';
  return 'generating';
}

function updatedAt(task: SimTask, now: number): number {
  if (task.completedAt !== null) return task.completedAt;
  if (now < task.queuingAt) return task.createdAt;
  if (now < task.generatingAt) return Math.round(task.queuingAt);
  return Math.round(task.generatingAt);
}

export function toRecord(task: SimTask, now: number): SimTaskRecord {
  const { final: _final, queuingAt: _q, generatingAt: _g, dueAt: _d, odd: _o, ...rest } = task;
  return {
    ...rest,
    resultUrls: [...task.resultUrls],
    state: stateAt(task, now),
    updatedAt: updatedAt(task, now),
  };
}

/** The dialect parts the views depend on. */
export interface ViewStyle {
  dialect: 'live' | 'docs';
}

/** Odd words a task with `odd` reports while running, by phase (live clients saw these; kie-samples 14, 26). */
const ODD_RUNNING: Record<'waiting' | 'queuing' | 'generating', string | null | undefined> = {
  waiting: '',
  queuing: 'PENDING',
  generating: undefined, // no state key at all
};

/**
 * recordInfo's `data` (KIE_API.md, "Task detail"): JSON strings for param/resultJson, times in Unix ms. `costTime` is
 * whole seconds in the live dialect (every live recording) and ms in the docs dialect. null stands for `data: null`
 * (an odd task in the middle of its run).
 */
export function recordInfoData(task: SimTask, now: number, style: ViewStyle = { dialect: 'docs' }): Record<string, unknown> | null {
  const state = stateAt(task, now);
  const ended = task.completedAt !== null;
  const elapsed = ended ? (task.completedAt as number) - task.createdAt : null;
  const data: Record<string, unknown> = {
    taskId: task.taskId,
    model: task.model,
    state: state,
    param: task.param,
    resultJson: state === 'success' ? JSON.stringify({ resultUrls: task.resultUrls }) : '',
    failCode: state === 'fail' ? task.failCode : null,
    failMsg: state === 'fail' ? task.failMsg : null,
    costTime: elapsed === null ? null : style.dialect === 'live' ? Math.floor(elapsed / 1000) : elapsed,
    completeTime: ended ? task.completedAt : null,
    createTime: task.createdAt,
    updateTime: updatedAt(task, now),
    creditsConsumed: task.creditsConsumed,
  };
  if (task.odd) {
    if (state === 'success') data.state = 'SUCCEEDED';
    else if (state === 'fail') data.state = 'FAILED';
    else {
      // The middle of the run answers data: null (kie-samples 26).
      const span = task.dueAt - task.createdAt;
      if (now > task.createdAt + span * 0.5 && now < task.createdAt + span * 0.7) return null;
      const word = ODD_RUNNING[state];
      if (word === undefined) delete data.state;
      else data.state = word;
    }
  }
  return data;
}

/**
 * The callback body (KIE_API.md, "Callbacks"): `code` 200 on success, 501 on failure; `costTime` in seconds as the
 * callback schema documents it. The live dialect uses kie's "Playground task ..." messages (kie-samples 40-42).
 */
export function callbackBody(task: SimTask, style: ViewStyle = { dialect: 'docs' }): Record<string, unknown> {
  const data = recordInfoData(task, task.completedAt ?? Date.now(), { dialect: 'docs' }) ?? {};
  const live = style.dialect === 'live';
  data.costTime = typeof data.costTime === 'number' ? (live ? Math.floor : Math.round)(data.costTime / 1000) : null;
  if (task.final === 'success') return { code: 200, msg: live ? 'Playground task completed successfully.' : 'Image upscaled successfully.', data };
  return { code: 501, msg: live ? 'Playground task failed.' : (task.failMsg ?? 'Generation failed'), data: { ...data, creditsConsumed: 0 } };
}
