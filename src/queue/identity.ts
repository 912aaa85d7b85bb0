/** Job identity: stable image ids (idempotent enqueue), BullMQ job ids per lane and generation, batch ids. */
import { createHash, randomBytes } from 'node:crypto';
import type { Factor, ModelName } from '../kie/models.js';

/** A batch id people can type: letters, digits, `.`, `_`, `-`, at most 64 characters. */
export const BATCH_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function checkBatchId(batchId: string): string | null {
  return BATCH_ID_PATTERN.test(batchId)
    ? null
    : `batch id "${batchId}" must be 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit`;
}

/** A new batch id such as `b20261121-223015-3fa9`. */
export function newBatchId(now = new Date()): string {
  const iso = now.toISOString().replace(/[-:]/g, '');
  return `b${iso.slice(0, 8)}-${iso.slice(9, 15)}-${randomBytes(2).toString('hex')}`;
}

/** The image's id: a hash of batch + model + factor + input, so the same line enqueued twice is one image. */
export function imageJobId(batchId: string, model: ModelName, factor: Factor | null, input: string): string {
  return createHash('sha256').update(`${batchId}\n${model}\n${factor ?? ''}\n${input}`).digest('hex').slice(0, 24);
}

/** BullMQ id of the submit job of a generation. */
export function submitJobId(jobId: string, generation: number): string {
  return generation === 0 ? jobId : `${jobId}-g${generation}`;
}

/** BullMQ id of the poll job of a generation. */
export function pollJobId(jobId: string, generation: number): string {
  return `${submitJobId(jobId, generation)}-p`;
}

/** BullMQ id of the download job of a generation. */
export function downloadJobId(jobId: string, generation: number): string {
  return `${submitJobId(jobId, generation)}-d`;
}

/** Splits a submit job id (as carried in a callback URL) into image id and generation. */
export function parseSubmitJobId(id: string): { jobId: string; generation: number } | null {
  const m = /^([0-9a-f]{24})(?:-g(\d{1,4}))?$/.exec(id);
  if (!m) return null;
  return { jobId: m[1] as string, generation: m[2] === undefined ? 0 : Number(m[2]) };
}

/** Splits a poll job id (`pollJobId`) into image id and generation; null when it is not one. */
export function parsePollJobId(id: string): { jobId: string; generation: number } | null {
  return id.endsWith('-p') ? parseSubmitJobId(id.slice(0, -2)) : null;
}
