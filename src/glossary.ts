/**
 * Glossary. Words that mean different things in BullMQ, in kie.ai and here:
 *
 * - **image**: one input (a URL or a local file) with a model and factor. Everything is counted in images.
 * - **job**: a BullMQ job. Each image has one *record* and, over its life, a submit job, a poll job and an optional
 *   download job. The image's identity is its `jobId` (a stable hash of batch, model, factor and input); BullMQ job
 *   ids are derived from it (`<jobId>`, `<jobId>-g1`, `<jobId>-p`, ...).
 * - **task**: a kie.ai task, created by one createTask call, identified by kie's `taskId`. Creating a task costs
 *   credits when it succeeds; a failed task costs nothing.
 * - **generation**: how many times an image has been given a fresh task (0 at first; +1 for each resubmission of a
 *   server-side failure and each `upscale retry`). BullMQ job ids carry it so a new generation is a new job.
 * - **batch**: the images enqueued together under one batch id; the unit of status, export, retry and cancel.
 * - **lane**: one kind of work with its own queue and API budget: `submit` (createTask), `poll` (recordInfo),
 *   `download` (fetch results and store them at OUTPUT_URL / OUTPUT_DIR).
 * - **attempt**: one createTask call for an image (`submitAttempts` in the record). An *ambiguous* submit is an
 *   attempt whose outcome is unknown (timeout or crash after sending): kie.ai may have created a task.
 * - **record**: the result record of one image, kept in Redis apart from BullMQ's job retention.
 * - **meta**: an image's extra input columns (a CSV's `sku`, a JSON line's other fields), text only, bounded, kept
 *   on its submit job and record; not part of its identity.
 * - **index**: the per-batch sorted sets the record scripts keep beside the records so the batch page can filter,
 *   search and page without reading the batch (src/results/index-lua.ts).
 * - **held** / **admission**: a submit job waits *held* (delayed in BullMQ, indexed per batch) until the batch
 *   scheduler *admits* it into the submit queue, a few at a time, in fair order among batches (src/queue/fair-share.ts).
 * - **priority**: a batch's share of the create budget among batches with held jobs (`high` : `normal` : `low` =
 *   4 : 2 : 1), or `urgent` (before all others).
 * - **gate**: a batch-level stop on admission (`paused` by `upscale pause --batch`); distinct from a *lane pause*,
 *   which stops a whole lane for every batch.
 */
export {};
