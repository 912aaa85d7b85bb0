/**
 * The finalizer: when a batch's last image reaches a terminal state and its last download is done, exactly one
 * process writes `results.jsonl` (the export) and `summary.json` as `<batchId>/` in the output storage (OUTPUT_URL or
 * OUTPUT_DIR, when set: the same place as the batch's results, file or S3), marks the batch finished
 * (`finalizedAt`) and stores `batch.completed` in the notification outbox.
 *
 * How "exactly one" holds across processes and crashes:
 * - the record scripts put a batch in the due set (`keys.finalizeDue`) in the same atomic step as the write that
 *   completed it, and take it out (moving its `epoch` on) when a retry or a late image re-opens it;
 * - a finalizer claims a due batch with a lease (SET NX PX) only while it is still complete and not finalized;
 * - the files are written atomically (temp + rename on disk, a completed upload on S3), so a claimer that dies
 *   mid-way leaves no half file, and the next claimer (after the lease) writes the same files again;
 * - the commit is one Lua call: only the lease holder, only if the epoch is unchanged and the batch still complete,
 *   sets `finalizedAt` and stores the event (its id carries the epoch). A batch re-opened meanwhile is finalized
 *   again at its new epoch, with a new event.
 */
import { PassThrough } from 'node:stream';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../log.js';
import { batchCompleted, emitArgs, EMIT_FN } from '../notify/index.js';
import { exportBatch } from '../results/export.js';
import { batchFolder, writeBatchFile } from '../results/batch-files.js';
import { runScript } from '../results/scripts.js';
import type { Runtime } from '../runtime.js';
import { openStorage, type Storage } from '../storage/index.js';

/** KEYS: summary, lease, due. ARGV: batchId, token, leaseMs. → { 'claimed', epoch } | { 'done' | 'open' | 'gone' | 'busy' } */
const CLAIM = `
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('ZREM', KEYS[3], ARGV[1]) return { 'gone' } end
local c = redis.call('HMGET', KEYS[1], 'waiting', 'held', 'submitting', 'polling', 'downloadsPending', 'finalizedAt', 'epoch')
if c[6] then redis.call('ZREM', KEYS[3], ARGV[1]) return { 'done' } end
local open = 0
for i = 1, 5 do open = open + math.max(0, tonumber(c[i]) or 0) end
if open > 0 then redis.call('ZREM', KEYS[3], ARGV[1]) return { 'open' } end
if not redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then return { 'busy' } end
return { 'claimed', c[7] or '0' }
`;

/** KEYS: lease. ARGV: token, leaseMs. Extends the lease while it is ours. */
const RENEW = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`;

/**
 * KEYS: summary, lease, due, event, notify due, notify recent. ARGV: batchId, token, epoch, now, resultsAt, then the
 * eight emitEvent arguments. → 'ok' | 'lost' (lease gone) | 'stale' (re-opened or finalized meanwhile).
 */
const COMMIT = `${EMIT_FN}
local holder = redis.call('GET', KEYS[2])
if holder ~= ARGV[2] then return 'lost' end
redis.call('DEL', KEYS[2])
local c = redis.call('HMGET', KEYS[1], 'waiting', 'held', 'submitting', 'polling', 'downloadsPending', 'finalizedAt', 'epoch')
local open = 0
for i = 1, 5 do open = open + math.max(0, tonumber(c[i]) or 0) end
if c[6] or open > 0 or (c[7] or '0') ~= ARGV[3] then return 'stale' end
redis.call('HSET', KEYS[1], 'finalizedAt', ARGV[4])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'resultsAt', ARGV[5]) end
redis.call('ZREM', KEYS[3], ARGV[1])
emitEvent(KEYS[4], KEYS[5], KEYS[6], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12], ARGV[13])
return 'ok'
`;

export type FinalizeOutcome = 'finalized' | 'done' | 'open' | 'gone' | 'busy' | 'lost' | 'stale';

export interface FinalizerOptions {
  /** The claim's lease; renewed every third of it while files are written. @defaultValue `60000` ms */
  leaseMs?: number;
  /** Test seam: runs after the files are written, before the commit (e.g. to kill the process there). */
  beforeCommit?: (batchId: string) => Promise<void> | void;
  /**
   * Where results.jsonl and summary.json go (the worker passes the download lane's storage; its owner closes it).
   * Null: nowhere. @defaultValue the config's OUTPUT_URL / OUTPUT_DIR, opened on first use (its connections are
   * idle keep-alive sockets that hold no process open)
   */
  storage?: Storage | null;
}

export class Finalizer {
  private readonly leaseMs: number;
  private storage: Promise<Storage | null> | undefined;

  constructor(
    private readonly rt: Runtime,
    private readonly log: Logger = rt.log,
    private readonly options: FinalizerOptions = {},
  ) {
    this.leaseMs = options.leaseMs ?? 60_000;
    if (options.storage !== undefined) this.storage = Promise.resolve(options.storage);
  }

  /** The output storage, opened on first use (no request is made by opening). */
  private outputStorage(): Promise<Storage | null> {
    this.storage ??= openStorage(this.rt.config);
    return this.storage;
  }

  /** Finalizes every batch in the due set that is still complete (oldest first, at most `max`). */
  async runDue(max = 20): Promise<Record<string, FinalizeOutcome>> {
    const ids = await this.rt.redis.zrangebyscore(this.rt.store.keys.finalizeDue, '-inf', '+inf', 'LIMIT', 0, max);
    const out: Record<string, FinalizeOutcome> = {};
    for (const id of ids) out[id] = await this.finalize(id);
    return out;
  }

  /** Claims, writes and commits one batch; returns what happened (only 'finalized' wrote and announced it). */
  async finalize(batchId: string): Promise<FinalizeOutcome> {
    const { redis, store } = this.rt;
    const keys = store.keys;
    const token = randomBytes(8).toString('hex');
    const lease = keys.finalizeLease(batchId);
    const claim = (await runScript(redis, CLAIM, [keys.batch(batchId), lease, keys.finalizeDue], [batchId, token, this.leaseMs])) as string[];
    if (claim[0] !== 'claimed') return claim[0] as FinalizeOutcome;
    const epoch = Number(claim[1]);
    const renew = setInterval(() => void runScript(redis, RENEW, [lease], [token, this.leaseMs]).catch(() => undefined), Math.max(50, this.leaseMs / 3));
    try {
      const now = Date.now();
      const summary = await store.getSummary(batchId, now);
      if (!summary) return 'gone';
      let resultsAt: string | null = null;
      const storage = await this.outputStorage();
      if (storage) {
        const out = new PassThrough();
        const exporting = exportBatch(store, batchId, { format: 'jsonl', out }).then(
          (n) => {
            out.end();
            return n;
          },
          (e: unknown) => {
            out.destroy(e instanceof Error ? e : new Error(String(e)));
            throw e;
          },
        );
        const [, records] = await Promise.all([writeBatchFile(storage, batchId, 'results.jsonl', out), exporting]);
        resultsAt = batchFolder(storage, batchId);
        const file = { ...summary, finalizedAt: now, epoch, resultsAt, records, files: { results: 'results.jsonl', summary: 'summary.json' } };
        await writeBatchFile(storage, batchId, 'summary.json', JSON.stringify(file, null, 2) + '\n');
      }
      await this.options.beforeCommit?.(batchId);
      const event = batchCompleted(
        {
          batchId,
          epoch,
          total: summary.total,
          counts: summary.counts,
          creditsConsumed: summary.creditsConsumed,
          startedAt: summary.startedAt,
          finishedAt: summary.finishedAt,
          resultsAt,
          export: `upscale export --batch ${batchId}`,
        },
        now,
      );
      const emitted = emitArgs(this.rt, event, now);
      const result = (await runScript(
        redis,
        COMMIT,
        [keys.batch(batchId), lease, keys.finalizeDue, ...emitted.keys],
        [batchId, token, epoch, now, resultsAt ?? '', ...emitted.args],
      )) as 'ok' | 'lost' | 'stale';
      if (result !== 'ok') {
        this.log.warn({ batchId, epoch, result }, 'batch changed while it was being finalized; it will be finalized again');
        return result;
      }
      this.log.info({ batchId, epoch, resultsAt, counts: summary.counts }, 'batch finished');
      return 'finalized';
    } finally {
      clearInterval(renew);
    }
  }
}
