/** Queue names and the Redis keys this project keeps beside BullMQ's, all under the configured prefix. */

export const LANES = ['submit', 'poll', 'download'] as const;
export type Lane = (typeof LANES)[number];

/** What each lane does, for people: a pause of the poll lane is "polling paused", never "submission paused". */
export const LANE_ACTIVITY: Record<Lane, string> = { submit: 'submission', poll: 'polling', download: 'downloads' };

/** BullMQ queue name of a lane (BullMQ puts it under `prefix:`). */
export function queueName(lane: Lane): string {
  return lane;
}

/** Keys of our own data (records, summaries, statistics, pause reasons), beside BullMQ's. */
export function keys(prefix: string) {
  return {
    batches: `${prefix}:batches`,
    batch: (batchId: string) => `${prefix}:batch:${batchId}`,
    records: (batchId: string) => `${prefix}:batch:${batchId}:records`,
    /** The meta keys (extra input columns) any image of the batch carries: a set, for the CSV export's header. */
    metaKeys: (batchId: string) => `${prefix}:batch:${batchId}:metakeys`,
    /** Base of the batch index's keys (src/results/index-lua.ts): `<base>line:all`, `<base>q`... */
    index: (batchId: string) => `${prefix}:batch:${batchId}:ix:`,
    /** The OUTPUT_NAME template pinned on a batch at its first enqueue (a string). */
    outputName: (batchId: string) => `${prefix}:batch:${batchId}:outputname`,
    /** Output names claimed in a batch (collision key → `jobId line`), when OUTPUT_NAME can give two images one name. */
    outputNames: (batchId: string) => `${prefix}:batch:${batchId}:names`,
    /** Latest completion durations of a model, for the adaptive poll schedule. */
    durations: (model: string) => `${prefix}:stats:durations:${model}`,
    /** Present while a lane is slowed down after a 429/455; its value is the strike count. */
    slowdown: (lane: Lane) => `${prefix}:slowdown:${lane}`,
    strikes: (lane: Lane) => `${prefix}:strikes:${lane}`,
    /** The sliding window of createTask calls (sorted set of calls, scored by when each stops counting; src/worker/create-gate.ts). */
    createGate: `${prefix}:gate:createTask`,
    /** The sliding window of recordInfo calls (polling's share of the query budget), shared by every worker. */
    queryGate: `${prefix}:gate:recordInfo`,
    /** The poll schedule's pressure and its controller's last step (src/worker/poll-budget.ts). */
    pollBudget: `${prefix}:poll-budget`,
    /** Why a lane was paused (JSON, pause-reason.ts), set by 401/402/433/the breaker/`upscale pause`, cleared by a probe or `upscale resume`. */
    pauseReason: (lane: Lane) => `${prefix}:paused:${lane}`,
    /** Held by the one image a probing lane lets through (its job id), or by the worker running a key probe. */
    probeToken: (lane: Lane) => `${prefix}:probe:${lane}`,
    /** The submit circuit breaker's current run of identical failures (src/queue/submit-breaker.ts). */
    breaker: `${prefix}:breaker:submit`,
    /** A callback that arrived before its poll job existed, by submit job id (src/queue/early-callbacks.ts). */
    earlyCallback: (submitJobId: string) => `${prefix}:early-callback:${submitJobId}`,
    /** Counters for /metrics, shared by all processes. */
    counters: `${prefix}:counters`,
    /** Batches whose every image is terminal and every download done, waiting for the finalizer (zset, score = when). */
    finalizeDue: `${prefix}:finalize:due`,
    /** The finalizer's claim on a batch (a token, with an expiry so a crashed claimer's batch is taken over). */
    finalizeLease: (batchId: string) => `${prefix}:finalize:lease:${batchId}`,
    /** The notification outbox: due deliveries (zset of `eventId target`, score = next try, ms). */
    notifyDue: `${prefix}:notify:due`,
    /** One notification event (hash: body, created, and one delivery state per target). */
    notifyEvent: (id: string) => `${prefix}:notify:event:${id}`,
    /** Recent events (zset of event ids by creation time) for status and the batches page. */
    notifyRecent: `${prefix}:notify:recent`,
    /** Occurrence markers of watched conditions (paused lane, stalled batch, low credits). */
    notifyMark: (what: string) => `${prefix}:notify:mark:${what}`,
    /** The account's credit balance as last read (JSON), shared by every worker; and the lock of who reads next. */
    creditBalance: `${prefix}:credits:balance`,
    creditReadLock: `${prefix}:credits:lock`,
    /**
     * The batch scheduler (src/queue/fair-share.ts): a batch's held submit jobs (ZSET jobId → arrival sequence),
     * the ready and urgent batches (ZSET batchId → virtual pass), its clock (HASH), the ids being admitted (ZSET).
     */
    held: (batchId: string) => `${prefix}:batch:${batchId}:held`,
    schedReady: `${prefix}:sched:ready`,
    schedUrgent: `${prefix}:sched:urgent`,
    schedClock: `${prefix}:sched:clock`,
    schedAdmitting: `${prefix}:sched:admitting`,
  };
}
export type Keys = ReturnType<typeof keys>;
