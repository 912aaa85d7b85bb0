/**
 * Who may send an image's createTask: the run of its submit job that still holds the job's BullMQ lock.
 *
 * A running job can lose its lock without its process dying: an event loop or a whole process starved of CPU past
 * JOB_LOCK_DURATION misses a renewal, BullMQ's stalled-job check moves the job back to waiting, and a second run
 * starts while the first is still working (in its pre-flight, at the send gate, or waiting for createTask's
 * answer). Without a fence both would send createTask and the image would be paid twice.
 *
 * The fence is one Lua script: the `sendingAt` mark is written into the job's data only if the job's lock still
 * holds this run's token. A run that lost its lock cannot mark, so it never sends (`claimSend` answers `false`);
 * a second run that starts after the first marked sees the mark in the data BullMQ hands it (the pick-up and the
 * read are one script) and waits, without writing anything, until the first attempt's answer must have arrived
 * (`inFlightUntil`): then the first run's checkpoint is in the data, or that attempt really was cut off (crash).
 *
 * The same script reads the batch's gate: a batch paused (`upscale pause --batch`) while this run prepared the input
 * or waited at the create gate is not sent to (`gated`), so a pause holds from the moment it is written, not from
 * the job's start. It reads the submit lane's pause reason too: when there is one, nothing is written and the
 * caller's `mayPass` decides (probe-gate.ts `mayPassPause`: a probe, or a reason left without a paused queue); a
 * pass claims again without that read. So the last look at both pauses and the claim are one round trip while
 * nothing is paused.
 */
import type { Job } from 'bullmq';
import type { Runtime } from '../runtime.js';
import { runScript } from '../results/scripts.js';
import type { SubmitJobData } from '../queue/job-data.js';

/**
 * KEYS: job hash, job lock, the batch's hash, the submit lane's pause reason. ARGV: lock token, data JSON, '1' when
 * the lane's pause was already let through. Returns 1 written, 0 lock not ours, -1 job gone, 2 the batch's gate is
 * closed, or the lane's pause reason (a string; nothing written in these four cases).
 */
const CLAIM_SEND = `
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local gate = redis.call('HGET', KEYS[3], 'gate')
if gate and gate ~= '' then return 2 end
if ARGV[3] ~= '1' then
  local paused = redis.call('GET', KEYS[4])
  if paused then return paused end
end
redis.call('HSET', KEYS[1], 'data', ARGV[2])
return 1
`;

/**
 * `sent`: this run may send; `lost`: another run (or none) holds the job's lock; `gated`: the batch was paused;
 * `paused`: submission was paused and `mayPass` said no.
 */
export type SendClaim = 'sent' | 'lost' | 'gated' | 'paused';

/**
 * Writes `data` (with its `sendingAt` mark) as the job's data if this run still holds the job's lock, the batch's
 * gate is open and the submit lane is not paused for this job, as `job.updateData` would. Resolves `sent` when
 * written (this run may send), `lost` when the lock belongs to another run or to none (this run must stop: the job
 * runs again elsewhere), `gated` when the batch was paused meanwhile, `paused` when the lane has a pause reason
 * (its stored JSON is handed to `mayPass`) and `mayPass` resolves false (nothing written in these three cases: the
 * caller gives the image back). Without a token (a processor called outside a BullMQ worker) the lock is not checked.
 */
export async function claimSend(
  rt: Runtime,
  job: Job<SubmitJobData>,
  token: string | undefined,
  data: SubmitJobData,
  mayPass: (pauseReason: string) => Promise<boolean>,
): Promise<SendClaim> {
  const jobKey = `${job.queueQualifiedName}:${job.id ?? ''}`;
  const batchKey = rt.store.keys.batch(data.batchId);
  const pauseKey = rt.store.keys.pauseReason('submit');
  if (token === undefined) {
    const [gate, paused] = await Promise.all([rt.redis.hget(batchKey, 'gate'), rt.redis.get(pauseKey)]);
    if (gate) return 'gated';
    if (paused && !(await mayPass(paused))) return 'paused';
    await job.updateData(data);
    return 'sent';
  }
  const claim = async (passed: boolean) =>
    runScript(rt.redis, CLAIM_SEND, [jobKey, `${jobKey}:lock`, batchKey, pauseKey], [token, JSON.stringify(data), passed ? '1' : '0']);
  let written = await claim(false);
  if (typeof written === 'string') {
    if (!(await mayPass(written))) return 'paused';
    written = await claim(true);
  }
  if (Number(written) === 2) return 'gated';
  if (Number(written) !== 1) return 'lost';
  job.data = data;
  return 'sent';
}

/**
 * Until when (ms since the epoch) an attempt marked at `sendingAt` may still be waiting for createTask's answer or
 * writing its checkpoint: the request's own deadline (KIE_REQUEST_TIMEOUT, an AbortSignal in the client) plus one
 * JOB_LOCK_DURATION for a slow process to write the checkpoint.
 */
export function inFlightUntil(rt: Runtime, sendingAt: number): number {
  return sendingAt + rt.config.requestTimeoutMs + rt.config.jobLockMs;
}
