/**
 * kie-upscale-queue as a library: the same pieces the `upscale` commands are made of.
 *
 * ```ts
 * import { loadConfig, createRuntime, enqueue, startWorkers } from 'kie-upscale-queue';
 * const rt = createRuntime(loadConfig());
 * const { batchId } = await enqueue(rt, [{ input: 'https://example.com/a.jpg' }], { model: 'topaz/image-upscale', factor: 4 });
 * const workers = await startWorkers(rt);
 * ```
 * The simulator is a separate entry (`kie-upscale-queue/sim`), so library users do not load it.
 */
export { loadConfig, ConfigError, CONFIG_KEYS, parseDuration, parseRateLimit, formatDuration, type Config, type RateLimit } from './config/index.js';
export { createRuntime, type Runtime, type RuntimeOptions } from './runtime.js';
export { createLogger, type Logger } from './log.js';
export * from './kie/index.js';
export {
  enqueue,
  enqueueFile,
  parseInput,
  InputError,
  EnqueueError,
  type EnqueueItem,
  type EnqueueOptions,
  type EnqueueResult,
  type Rejection,
} from './producer/index.js';
export { startWorkers, type WorkerOptions, type WorkerHandle } from './worker/index.js';
export { pause, resume, retry, cancel, getStatus, approve, pauseBatch, resumeBatch, setBatchPriority } from './control/index.js';
export { parseDeadline, setBatchDeadline, windowFit } from './batch/deadline.js';
export { declarePilot, startPilot, pilotOutcome, type PilotOutcome } from './batch/pilot.js';
export { Finalizer } from './batch/finalizer.js';
export { BatchWatch } from './batch/watch.js';
export { EVENT_TYPES, type EventType, type NotifyEvent, outboxSummary, recentEvents, Deliverer } from './notify/index.js';
export { PRIORITIES, PRIORITY_WEIGHTS, type Priority, type BatchGate, type GateState } from './queue/fair-share.js';
export { laneStatus, type LaneStatus, type LaneStatusMap } from './queue/lane-status.js';
export { LANES, type Lane } from './queue/names.js';
export { imageJobId, newBatchId, checkBatchId } from './queue/identity.js';
export { ResultStore, type RecordPatch } from './results/store.js';
export { STATES, TERMINAL_STATES, RECORD_FIELDS, type ResultRecord, type RecordState, type BatchSummary } from './results/record.js';
export { exportBatch, UnknownBatchError, type ExportFormat } from './results/export.js';
export {
  queryRecords,
  queryAll,
  failureGroups,
  finishedPerMinute,
  QueryError,
  type RecordQuery,
  type QueryPage,
  type FailureGroup,
} from './results/batch-query.js';
export { buildApp, type ServerOptions } from './server/app.js';
