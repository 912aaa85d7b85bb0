/** Start-up check of the Redis the workers share: BullMQ loses jobs when Redis evicts keys. */
import type { Redis } from 'ioredis';
import type { Logger } from '../log.js';

/** Returns the eviction policy, warning when it is not `noeviction`. Managed Redis may forbid CONFIG: then null. */
export async function checkEvictionPolicy(redis: Redis, log: Logger): Promise<string | null> {
  try {
    const reply = await redis.config('GET', 'maxmemory-policy');
    const policy = reply[1] ?? null;
    if (policy && policy !== 'noeviction') {
      log.warn({ policy }, `Redis maxmemory-policy is ${policy}: under memory pressure Redis may evict jobs and records. Set maxmemory-policy noeviction.`);
    }
    return policy;
  } catch {
    return null;
  }
}
