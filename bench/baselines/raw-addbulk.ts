/**
 * The floor of scenario 3: the same submit jobs `upscale enqueue` adds (same ids, data and options), read from the
 * same file and added with raw `queue.addBulk`, 1,000 per call with up to three calls in flight (as the producer
 * overlaps storing with reading), and nothing else: no validation, no result records, no batch summary, no
 * duplicate detection.
 *
 * `tsx bench/baselines/raw-addbulk.ts <job.json>`; job.json: `{ redisUrl, prefix, file, batchId, model, factor }`.
 * With `--startup-only` it imports what it needs and exits (to measure process start-up).
 * Prints `{ added }` as JSON.
 */
import { createReadStream, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { Factor, ModelName } from '../../src/kie/models.js';
import { imageJobId, submitJobId } from '../../src/queue/identity.js';
import type { SubmitJobData } from '../../src/queue/job-data.js';
import { JOB_OPTIONS } from '../../src/queue/queues.js';

interface RawJob {
  redisUrl: string;
  prefix: string;
  file: string;
  batchId: string;
  model: ModelName;
  factor: Factor;
}

if (process.argv.includes('--startup-only')) process.exit(0);
const job = JSON.parse(readFileSync(process.argv[2] as string, 'utf8')) as RawJob;
const connection = new Redis(job.redisUrl, { maxRetriesPerRequest: 3 });
const queue = new Queue('submit', { connection, prefix: job.prefix, defaultJobOptions: JOB_OPTIONS.submit });
const CHUNK = 1000;
const IN_FLIGHT = 3;

let added = 0;
const inFlight = new Set<Promise<void>>();
async function store(jobs: typeof chunk): Promise<void> {
  while (inFlight.size >= IN_FLIGHT) await Promise.race(inFlight);
  const p: Promise<void> = queue
    .addBulk(jobs)
    .then(() => {
      added += jobs.length;
    })
    .finally(() => inFlight.delete(p));
  inFlight.add(p);
}
let chunk: { name: string; data: SubmitJobData; opts: { jobId: string } }[] = [];
for await (const raw of createInterface({ input: createReadStream(job.file), crlfDelay: Infinity })) {
  const input = raw.trim();
  if (!input) continue;
  const jobId = imageJobId(job.batchId, job.model, job.factor, input);
  chunk.push({
    name: 'submit',
    data: { jobId, batchId: job.batchId, input, model: job.model, factor: job.factor, generation: 0 },
    opts: { jobId: submitJobId(jobId, 0) },
  });
  if (chunk.length === CHUNK) {
    await store(chunk);
    chunk = [];
  }
}
if (chunk.length > 0) await store(chunk);
await Promise.all(inFlight);
process.stdout.write(JSON.stringify({ added }) + '\n');
await queue.close();
connection.disconnect();
