/** Record writes from the lanes, re-creating a record that is missing (expired or deleted) from the job's data. */
import type { SubmitJobData } from '../queue/job-data.js';
import type { RecordPatch, TransitionResult } from '../results/store.js';
import type { LaneContext } from './context.js';

type ImageRef = Pick<SubmitJobData, 'jobId' | 'batchId'> & Partial<Pick<SubmitJobData, 'input' | 'model' | 'factor' | 'generation' | 'meta'>>;

export async function recordOrRecreate(ctx: LaneContext, image: ImageRef, patch: RecordPatch): Promise<TransitionResult> {
  const { store } = ctx.rt;
  const result = await store.transition(image.batchId, image.jobId, patch);
  if (result.status !== 'missing' || image.input === undefined || image.model === undefined) return result;
  ctx.log.warn({ jobId: image.jobId, batchId: image.batchId }, 'result record was missing; re-created from the job');
  await store.createRecords(image.batchId, [{ jobId: image.jobId, input: image.input, model: image.model, factor: image.factor ?? null, ...(image.meta ? { meta: image.meta } : {}) }]);
  return store.transition(image.batchId, image.jobId, { generation: image.generation ?? 0, ...patch });
}
