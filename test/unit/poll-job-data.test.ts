/** The stored form of a poll job's data: what the job id says and zero counters are left out, and read back. */
import { describe, expect, it } from 'vitest';
import { pollJobId, parsePollJobId } from '../../src/queue/identity.js';
import { pollDataOf, storedPollData, type PollJobData } from '../../src/queue/job-data.js';

const IMAGE = '0123456789abcdef01234567';
const data = (over: Partial<PollJobData> = {}): PollJobData => ({
  jobId: IMAGE,
  batchId: 'catalogue',
  model: 'topaz/image-upscale',
  taskId: '5c9a1f3e0e7d4b2f8a6c1d9e3b7f0a2c',
  generation: 2,
  submittedAt: 1_796_000_000_000,
  deadlineAt: 1_796_086_400_000,
  polls: 0,
  errors: 0,
  ...over,
});

describe('poll job data', () => {
  it('stores neither what the job id says nor counters at 0, and reads the whole back', () => {
    const stored = storedPollData(data());
    expect(stored).toEqual({ batchId: 'catalogue', model: 'topaz/image-upscale', taskId: data().taskId, submittedAt: data().submittedAt, deadlineAt: data().deadlineAt });
    expect(JSON.stringify(stored).length).toBeLessThan(JSON.stringify(data()).length - 60);
    expect(pollDataOf({ id: pollJobId(IMAGE, 2), data: stored })).toEqual(data());
    const counted = data({ polls: 7, errors: 2, autoResubmits: 1 });
    expect(pollDataOf({ id: pollJobId(IMAGE, 2), data: storedPollData(counted) })).toEqual(counted);
  });

  it('reads a job stored whole (before this form) as it was, whatever its id', () => {
    expect(pollDataOf({ id: 'parked-1', data: data({ generation: 0 }) })).toEqual(data({ generation: 0 }));
  });

  it('refuses a stored job whose id names no image', () => {
    expect(() => pollDataOf({ id: 'parked-1', data: storedPollData(data()) })).toThrow(/poll job parked-1 names no image/);
  });

  it('splits poll job ids of every generation and nothing else', () => {
    expect(parsePollJobId(pollJobId(IMAGE, 0))).toEqual({ jobId: IMAGE, generation: 0 });
    expect(parsePollJobId(pollJobId(IMAGE, 12))).toEqual({ jobId: IMAGE, generation: 12 });
    expect(parsePollJobId(IMAGE)).toBeNull();
    expect(parsePollJobId(`${IMAGE}-d`)).toBeNull();
    expect(parsePollJobId('x-p')).toBeNull();
  });
});
