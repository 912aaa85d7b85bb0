/**
 * The notification events (NOTIFY_URL): what each one carries and its stable id. An id names one occurrence
 * (`batch.completed` of batch B at epoch E, a lane paused at time T...), so however many processes notice the same
 * occurrence, the outbox keeps one event and delivers it once per target (at least once: a receiver dedupes by
 * `webhook-id`). Times are Unix milliseconds; credits are kie.ai credits. Durations in the texts are `formatDuration`'s.
 */
import { formatCount, formatDuration } from '../config/units.js';
import { LANE_ACTIVITY, type Lane } from '../queue/names.js';

export const EVENT_TYPES = ['batch.completed', 'batch.paused', 'batch.stalled', 'batch.budget_reached', 'batch.expired', 'credits.low'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface NotifyEvent {
  /** Stable id of the occurrence; the `webhook-id` header. */
  id: string;
  type: EventType;
  /** When the occurrence was first noticed (Unix ms). */
  at: number;
  /** The batch it is about, or null for account-wide events (credits.low, a paused lane without batches). */
  batchId: string | null;
  /** One line for people (the Slack form, logs, `upscale status`). */
  text: string;
  data: Record<string, unknown>;
}

/** Characters allowed in an id (Standard Webhooks ids are opaque strings; ours stay printable and short). */
function part(v: string | number): string {
  return String(v).replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 80);
}

export function eventId(type: EventType, ...parts: (string | number)[]): string {
  return ['evt', type, ...parts.map(part)].join('.');
}

export interface CompletedFacts {
  batchId: string;
  epoch: number;
  total: number;
  counts: Record<string, number>;
  creditsConsumed: number;
  startedAt: number | null;
  finishedAt: number | null;
  /** Folder of results.jsonl and summary.json (a local path, or `s3://bucket/prefix/<batchId>`), or null without OUTPUT_URL / OUTPUT_DIR. */
  resultsAt: string | null;
  /** How to get the results without OUTPUT_URL / OUTPUT_DIR. */
  export: string;
}

export function batchCompleted(f: CompletedFacts, at: number): NotifyEvent {
  const durationMs = f.startedAt !== null && f.finishedAt !== null ? f.finishedAt - f.startedAt : null;
  const parts = Object.entries(f.counts)
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${n} ${s}`)
    .join(', ');
  const where = f.resultsAt ? `results in ${f.resultsAt}` : `results: ${f.export}`;
  return {
    id: eventId('batch.completed', f.batchId, f.epoch),
    type: 'batch.completed',
    at,
    batchId: f.batchId,
    text: `Batch ${f.batchId} finished: ${f.total} images (${parts}), ${round(f.creditsConsumed)} credits; ${where}`,
    data: { ...f, creditsConsumed: round(f.creditsConsumed), durationMs },
  };
}

export interface PausedFacts {
  lane: string;
  /** The pause reason's code: `401`, `402`, `credits`, `manual`, `pilot`... */
  code: string;
  message: string;
  /** When the pause began (its reason's time): part of the id, so each pause is one event. */
  since: number;
  /** Batches with work the pause holds up. */
  batches: string[];
  /** What to do about it. */
  action: string;
  batchId?: string | null;
  /** More facts for the data object (a pilot's outcome). */
  extra?: Record<string, unknown>;
}

/**
 * `batch.paused`. For one batch (a pilot): `Batch B paused (pilot): ...`. For a lane: the lane that paused, by what
 * it does (`Polling paused (poll lane, manual): ... — holds up batches b1, b2 — ...`): the batches are held up, not
 * paused themselves.
 */
export function batchPaused(f: PausedFacts, at: number): NotifyEvent {
  const list = `${f.batches.slice(0, 5).join(', ')}${f.batches.length > 5 ? '…' : ''}`;
  const activity = LANE_ACTIVITY[f.lane as Lane] ?? `the ${f.lane} lane`;
  const head = f.batchId
    ? `Batch ${f.batchId} paused (${f.code})`
    : `${activity.charAt(0).toUpperCase()}${activity.slice(1)} paused (${f.lane} lane, ${f.code})`;
  const held = !f.batchId && f.batches.length > 0 ? ` — holds up ${f.batches.length === 1 ? 'batch' : 'batches'} ${list}` : '';
  return {
    id: eventId('batch.paused', f.batchId ?? f.lane, f.code, f.since),
    type: 'batch.paused',
    at,
    batchId: f.batchId ?? (f.batches.length === 1 ? (f.batches[0] as string) : null),
    text: `${head}: ${f.message}${held} — ${f.action}`,
    data: { lane: f.lane, reason: { code: f.code, message: f.message, since: f.since }, batches: f.batches, action: f.action, ...f.extra },
  };
}

export function batchStalled(f: { batchId: string; since: number; stallAfterMs: number; remaining: number; counts: Record<string, number> }, at: number): NotifyEvent {
  return {
    id: eventId('batch.stalled', f.batchId, f.since),
    type: 'batch.stalled',
    at,
    batchId: f.batchId,
    text: `Batch ${f.batchId} stalled: no image finished for ${formatDuration(at - f.since)} with ${formatCount(f.remaining, 'image')} still to do (check \`upscale status\`)`,
    data: f,
  };
}

export function budgetReached(f: { batchId: string; maxCredits: number; reason: string }, at: number): NotifyEvent {
  return {
    id: eventId('batch.budget_reached', f.batchId, f.maxCredits),
    type: 'batch.budget_reached',
    at,
    batchId: f.batchId,
    text: `Batch ${f.batchId} reached its credit budget of ${f.maxCredits}: the images not yet submitted are cancelled (${f.reason})`,
    data: f,
  };
}

export function batchExpired(f: { batchId: string; deadlineAt: number; expired: number; inFlight: number }, at: number): NotifyEvent {
  return {
    id: eventId('batch.expired', f.batchId, f.deadlineAt),
    type: 'batch.expired',
    at,
    batchId: f.batchId,
    text: `Batch ${f.batchId} reached its deadline (${new Date(f.deadlineAt).toISOString()}): ${f.expired} images not submitted are expired; ${f.inFlight} already submitted are followed to the end`,
    data: f,
  };
}

export function creditsLow(f: { balance: number; needed: number; imagesLeft: number; nextPrice: number; since: number }, at: number): NotifyEvent {
  return {
    id: eventId('credits.low', f.since),
    type: 'credits.low',
    at,
    batchId: null,
    text: `Credits low: ${round(f.balance)} left, the waiting images need about ${round(f.needed)} — credits for about ${f.imagesLeft} more images`,
    data: { ...f, balance: round(f.balance), needed: round(f.needed) },
  };
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}
