/**
 * The checks of a run under faults (test/chaos, bench scenario `catalogue`), on the result records, the export and
 * the simulator's own account of what it was asked and did:
 *
 * - **lost**: an image enqueued without a record in a terminal state;
 * - **paid twice**: every accepted createTask of an input beyond the first must be covered by an ambiguous attempt
 *   on that input's record (`ambiguousSubmits`: an attempt whose outcome the pipeline could not know);
 * - **export**: each exported record agrees with the simulator's task (state, result URLs, failCode, input).
 *
 * Records are streamed (an `AsyncIterable`), so a 100,000-image batch is checked without holding it.
 */
import type { ResultRecord } from '../../src/results/record.js';
import { TERMINAL_STATES } from '../../src/results/record.js';
import type { SimTaskRecord } from '../../src/sim/index.js';

export interface RecordTally {
  /** Records seen. */
  records: number;
  /** Records in a terminal state. */
  terminal: number;
  /** Records per state. */
  states: Record<string, number>;
  /** Sum of `ambiguousSubmits` over every record. */
  ambiguous: number;
  /** `ambiguousSubmits` of the inputs asked about (`ambiguousOf`). */
  ambiguousByInput: Map<string, number>;
}

/**
 * Counts `records` per state; keeps `ambiguousSubmits` of the inputs in `ambiguousOf` (the ones the simulator
 * created more than one task for).
 */
export async function tallyRecords(records: AsyncIterable<ResultRecord> | Iterable<ResultRecord>, ambiguousOf: ReadonlySet<string> = new Set()): Promise<RecordTally> {
  const tally: RecordTally = { records: 0, terminal: 0, states: {}, ambiguous: 0, ambiguousByInput: new Map() };
  for await (const r of records) {
    tally.records++;
    tally.states[r.state] = (tally.states[r.state] ?? 0) + 1;
    if (TERMINAL_STATES.includes(r.state)) tally.terminal++;
    tally.ambiguous += r.ambiguousSubmits ?? 0;
    if (ambiguousOf.has(r.input)) tally.ambiguousByInput.set(r.input, (tally.ambiguousByInput.get(r.input) ?? 0) + (r.ambiguousSubmits ?? 0));
  }
  return tally;
}

/** Inputs the simulator accepted more than one createTask for. */
export function inputsCreatedTwice(perInput: Record<string, number>): Set<string> {
  return new Set(Object.entries(perInput).filter(([, n]) => n > 1).map(([input]) => input));
}

export interface PaymentCheck {
  /** Accepted createTask calls beyond the first, over every input. */
  duplicates: number;
  /** Of those, the ones no ambiguous attempt on the input's record explains: paid twice (must be 0). */
  duplicatesWithoutAmbiguity: number;
  /** One line per input paid twice. */
  unexplained: string[];
}

/** Compares the simulator's accepted createTask per input with the ambiguous attempts the records admit. */
export function checkPayments(perInput: Record<string, number>, ambiguousByInput: ReadonlyMap<string, number>): PaymentCheck {
  const out: PaymentCheck = { duplicates: 0, duplicatesWithoutAmbiguity: 0, unexplained: [] };
  for (const [input, n] of Object.entries(perInput)) {
    const extra = n - 1;
    if (extra <= 0) continue;
    out.duplicates += extra;
    const covered = ambiguousByInput.get(input) ?? 0;
    if (extra > covered) {
      out.duplicatesWithoutAmbiguity += extra - covered;
      out.unexplained.push(`${input}: ${n} tasks, ${covered} ambiguous submits recorded`);
    }
  }
  return out;
}

/** What is wrong with exported record `r` against the simulator's task of its taskId (empty: they agree). */
export function compareWithTask(r: ResultRecord, task: SimTaskRecord | undefined): string[] {
  if (!task) return [`${r.jobId}: ${r.state} ${r.failCode ?? ''} without a simulator task (taskId ${r.taskId})`];
  const problems: string[] = [];
  const want = task.state === 'success' ? 'succeeded' : task.state === 'fail' ? 'failed' : `(sim still ${task.state})`;
  if (r.state !== want) problems.push(`${r.jobId}: state ${r.state}, simulator ${task.state}`);
  else if (r.state === 'succeeded' && JSON.stringify(r.resultUrls) !== JSON.stringify(task.resultUrls)) problems.push(`${r.jobId}: resultUrls differ`);
  else if (r.state === 'failed' && r.failCode !== task.failCode) problems.push(`${r.jobId}: failCode ${r.failCode}, simulator ${task.failCode}`);
  if (task.input !== r.input) problems.push(`${r.jobId}: task ${task.taskId} is of another input`);
  return problems;
}
