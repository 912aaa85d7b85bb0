/** Operator controls: they sit above the runtime, the queues and the results, and nothing below imports them. */
export { pause, resume, type PauseResult, type ResumeResult } from './lanes.js';
export { getStatus, heldBack, retry, cancel } from './batches.js';
export { retryDownloads } from './retry-downloads.js';
export { approve } from './pilot.js';
export { pauseBatch, resumeBatch, setBatchPriority, type BatchPauseResult, type BatchResumeResult, type PriorityResult } from './batch-schedule.js';
