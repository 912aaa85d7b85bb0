/**
 * The results store: one record per image and a summary per batch, in Redis under the prefix, kept for
 * RESULT_RETENTION independently of BullMQ's job retention. All writes go through two Lua scripts
 * (create, transition) so counts per state always match the records.
 */
import type { Redis } from 'ioredis';
import { DEFAULT_PRIORITY, isPriority, parseGate } from '../queue/fair-share.js';
import { keys as keyNames, type Keys } from '../queue/names.js';
import {
  ACTIVE_STATES,
  STATES,
  newRecord,
  parseRecord,
  storedRecord,
  type BatchSummary,
  type RecordState,
  type ResultRecord,
  type StateCounts,
} from './record.js';
import { CREATE_RECORDS, TRANSITION, runScript } from './scripts.js';

/** Fields a transition may set; `$inc` adds to counters. */
export type RecordPatch = Partial<Omit<ResultRecord, 'jobId' | 'batchId' | 'updatedAt'>> & {
  $inc?: Partial<Record<'submitAttempts' | 'ambiguousSubmits' | 'polls', number>>;
};

export type TransitionResult =
  | { status: 'ok'; previous: RecordState; record: ResultRecord }
  | { status: 'refused'; previous: RecordState; record: ResultRecord }
  | { status: 'missing' };

export interface NewImage {
  jobId: string;
  input: string;
  model: ResultRecord['model'];
  factor: ResultRecord['factor'];
  line?: number | null;
  meta?: Record<string, string>;
  /** The URL as written, when `input` is its encoded form. */
  originalInput?: string | null;
  inputExpiresAt?: number | null;
  inputWarning?: string | null;
}

/** What `createRecords` found for each image: new, already there and still waiting, or already past waiting. */
export type CreateFlag = 'created' | 'waiting' | 'exists';

export class ResultStore {
  readonly keys: Keys;

  constructor(
    readonly redis: Redis,
    prefix: string,
    readonly retentionMs: number,
  ) {
    this.keys = keyNames(prefix);
  }

  /**
   * Creates the records of new images in a batch (existing ones are left untouched), in state `initial`
   * (`held`: behind a pilot, no submit job is to be added for them).
   */
  async createRecords(batchId: string, images: readonly NewImage[], now = Date.now(), initial: 'waiting' | 'held' = 'waiting'): Promise<CreateFlag[]> {
    if (images.length === 0) return [];
    const args: (string | number)[] = [now, this.retentionMs, batchId, initial];
    const metaKeys = new Set<string>();
    for (const img of images) {
      args.push(img.jobId, JSON.stringify(storedRecord({ ...newRecord({ ...img, batchId }, now), state: initial })));
      for (const k of Object.keys(img.meta ?? {})) metaKeys.add(k);
    }
    if (metaKeys.size > 0) {
      const metaKey = this.keys.metaKeys(batchId);
      await this.redis.multi().sadd(metaKey, ...metaKeys).pexpire(metaKey, this.retentionMs).exec();
    }
    const flags = (await runScript(
      this.redis,
      CREATE_RECORDS,
      [this.keys.records(batchId), this.keys.batch(batchId), this.keys.batches, this.keys.finalizeDue, this.keys.index(batchId)],
      args,
    )) as number[];
    return flags.map((f) => (f === 1 ? 'created' : f === 2 ? 'waiting' : 'exists'));
  }

  /**
   * Applies `patch` to a record atomically, moving the summary counts when the state changes.
   * With `from`, the change happens only when the record is currently in one of those states.
   */
  async transition(
    batchId: string,
    jobId: string,
    patch: RecordPatch,
    options: { from?: readonly RecordState[]; now?: number } = {},
  ): Promise<TransitionResult> {
    const now = options.now ?? Date.now();
    const [status, previous, json] = (await runScript(
      this.redis,
      TRANSITION,
      [this.keys.records(batchId), this.keys.batch(batchId), this.keys.metaKeys(batchId), this.keys.finalizeDue, this.keys.index(batchId)],
      [jobId, JSON.stringify(patch), now, this.retentionMs, (options.from ?? []).join(','), batchId],
    )) as [string, string, string];
    if (status === 'missing') return { status: 'missing' };
    // Parsed when read: most callers only look at the status (four transitions per image in the lanes).
    let record: ResultRecord | undefined;
    return {
      status: status as 'ok' | 'refused',
      previous: previous as RecordState,
      get record() {
        return (record ??= parseRecord(json, jobId, batchId));
      },
    };
  }

  /**
   * Pins the OUTPUT_NAME template of a batch (`keys.outputName`, kept `retentionMs` after its last use): the first
   * enqueue sets it, later ones get it back (to compare), and the download lane names the batch's results by it
   * whatever its own OUTPUT_NAME. Returns the pinned template. Kept apart from the batch's hash, so an enqueue whose
   * every line was refused leaves no batch behind.
   */
  async pinOutputName(batchId: string, template: string): Promise<string> {
    const key = this.keys.outputName(batchId);
    const [, [, pinned]] = (await this.redis
      .multi()
      .set(key, template, 'PX', this.retentionMs, 'NX')
      .get(key)
      .pexpire(key, this.retentionMs)
      .exec()) as [unknown, [unknown, string]];
    return pinned;
  }

  /** The OUTPUT_NAME template pinned on a batch at enqueue (its retention renewed), or null (none pinned). */
  getOutputName(batchId: string): Promise<string | null> {
    return this.redis.getex(this.keys.outputName(batchId), 'PX', this.retentionMs);
  }

  async getRecord(batchId: string, jobId: string): Promise<ResultRecord | null> {
    const json = await this.redis.hget(this.keys.records(batchId), jobId);
    return json === null ? null : parseRecord(json, jobId, batchId);
  }

  /** Streams every record of a batch with bounded memory (HSCAN pages of `pageSize`). */
  async *records(batchId: string, pageSize = 500): AsyncGenerator<ResultRecord> {
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.hscan(this.keys.records(batchId), cursor, 'COUNT', pageSize);
      cursor = next;
      for (let i = 1; i < flat.length; i += 2) yield parseRecord(flat[i] as string, flat[i - 1] as string, batchId);
    } while (cursor !== '0');
  }

  /** The meta keys any image of the batch carries, sorted. */
  async metaKeys(batchId: string): Promise<string[]> {
    return (await this.redis.smembers(this.keys.metaKeys(batchId))).sort();
  }

  async batchExists(batchId: string): Promise<boolean> {
    return (await this.redis.exists(this.keys.batch(batchId))) === 1;
  }

  async getSummary(batchId: string, now = Date.now()): Promise<BatchSummary | null> {
    const h = await this.redis.hgetall(this.keys.batch(batchId));
    if (Object.keys(h).length === 0) return null;
    return summaryFrom(batchId, h, now);
  }

  /** Every batch still retained, newest first. Batches whose data expired are dropped from the index. */
  async listBatches(now = Date.now()): Promise<BatchSummary[]> {
    await this.redis.zremrangebyscore(this.keys.batches, '-inf', now - this.retentionMs);
    const ids = await this.redis.zrevrange(this.keys.batches, 0, -1);
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hgetall(this.keys.batch(id));
    const results = (await pipeline.exec()) ?? [];
    const out: BatchSummary[] = [];
    const gone: string[] = [];
    ids.forEach((id, i) => {
      const h = results[i]?.[1] as Record<string, string> | undefined;
      if (h && Object.keys(h).length > 0) out.push(summaryFrom(id, h, now));
      else gone.push(id);
    });
    if (gone.length > 0) await this.redis.zrem(this.keys.batches, ...gone);
    return out;
  }
}

function num(v: string | undefined): number | null {
  if (v === undefined) return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

export function summaryFrom(batchId: string, h: Record<string, string>, now: number): BatchSummary {
  const counts = Object.fromEntries(STATES.map((s) => [s, Math.max(0, num(h[s]) ?? 0)])) as StateCounts;
  const total = num(h.total) ?? 0;
  const active = ACTIVE_STATES.reduce((n, s) => n + counts[s], 0);
  const done = total - active;
  const startedAt = num(h.startedAt);
  const lastDoneAt = num(h.lastDoneAt);
  const downloads = Math.max(0, num(h.downloadsPending) ?? 0);
  const finishedAt = active === 0 && downloads === 0 && total > 0 ? lastDoneAt : null;
  const elapsedMs = startedAt === null ? 0 : (finishedAt ?? now) - startedAt;
  const throughputPerMinute = startedAt !== null && elapsedMs > 0 && done > 0 ? (done / elapsedMs) * 60_000 : null;
  const etaSeconds =
    active === 0 ? 0 : throughputPerMinute ? Math.round((active / throughputPerMinute) * 60) : null;
  return {
    batchId,
    total,
    counts,
    creditsConsumed: Math.round((num(h.creditsConsumed) ?? 0) * 1000) / 1000,
    createdAt: num(h.createdAt),
    startedAt,
    updatedAt: num(h.updatedAt),
    finishedAt,
    ambiguousSubmits: num(h.ambiguousSubmits) ?? 0,
    throughputPerMinute: throughputPerMinute === null ? null : Math.round(throughputPerMinute * 10) / 10,
    etaSeconds,
    downloadsPending: Math.max(0, num(h.downloadsPending) ?? 0),
    downloadsFailed: Math.max(0, num(h.downloadsFailed) ?? 0),
    finalizedAt: num(h.finalizedAt),
    epoch: num(h.epoch) ?? 0,
    resultsAt: h.resultsAt ?? null,
    deadlineAt: num(h.deadlineAt),
    pilot: num(h.pilot),
    pilotApprovedAt: num(h.pilotApprovedAt),
    priority: h.priority !== undefined && isPriority(h.priority) ? h.priority : DEFAULT_PRIORITY,
    gate: parseGate(h.gate),
  };
}
