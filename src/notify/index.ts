/** Notifications: events, the Redis outbox, and the deliverer (NOTIFY_URL, NOTIFY_SECRET, NOTIFY_FORMAT). */
export * from './events.js';
export { emit, emitArgs, EMIT_FN, getEvent, recentEvents, outboxSummary, type OutboxSource, type OutboxSummary, type StoredEvent, type DeliveryState } from './outbox.js';
export { Deliverer, type DelivererOptions } from './deliver.js';
export { eventBody, makeSigner, safeTarget, webhookHeaders } from './format.js';
export { emitOnce, clearOccurrence } from './once.js';
