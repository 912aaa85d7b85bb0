/** Queue names and the Redis keys this project keeps beside BullMQ's, all under the configured prefix. */

export const LANES = ['submit', 'poll', 'download'] as const;
export type Lane = (typeof LANES)[number];

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
    /** Output names claimed in a batch (collision key → `jobId line`), when OUTPUT_NAME can give two images one name. */
    outputNames: (batchId: string) => `${prefix}:batch:${batchId}:names`,
    /** Latest completion durations of a model, for the adaptive poll schedule. */
    durations: (model: string) => `${prefix}:stats:durations:${model}`,
    /** Present while a lane is slowed down after a 429/455; its value is the strike count. */
    slowdown: (lane: Lane) => `${prefix}:slowdown:${lane}`,
    strikes: (lane: Lane) => `${prefix}:strikes:${lane}`,
    /** The next free createTask send slot (Redis clock, ms), shared by every worker (src/worker/create-gate.ts). */
    createGate: `${prefix}:gate:createTask`,
    /** Why a lane was paused (JSON), set by 401/402, cleared by `upscale resume`. */
    pauseReason: (lane: Lane) => `${prefix}:paused:${lane}`,
    /** Counters for /metrics, shared by all processes. */
    counters: `${prefix}:counters`,
  };
}
export type Keys = ReturnType<typeof keys>;
