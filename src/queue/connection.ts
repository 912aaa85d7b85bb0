/**
 * Redis connections as BullMQ's production guide sets them: workers (blocking) retry forever
 * (`maxRetriesPerRequest: null`); producers and commands fail fast instead of queueing commands offline.
 * `rediss://` URLs get TLS from ioredis; a password in the URL is used as given.
 */
import { Redis, type RedisOptions } from 'ioredis';

export type ConnectionRole = 'worker' | 'client';

/** ioredis' own option type clashes with exactOptionalPropertyTypes on `replyMapping`, which we never set. */
export type ConnectionOptions = Omit<RedisOptions, 'replyMapping'>;

export function connectionOptions(role: ConnectionRole): ConnectionOptions {
  const base: ConnectionOptions = {
    // Reconnect with a capped backoff; never give up while the process runs.
    retryStrategy: (times) => Math.min(times * 200, 5000),
    connectionName: `kie-upscale-queue:${role}`,
  };
  return role === 'worker'
    ? { ...base, maxRetriesPerRequest: null, enableReadyCheck: false }
    : { ...base, maxRetriesPerRequest: 3, enableOfflineQueue: true };
}

export function createRedis(url: string, role: ConnectionRole): Redis {
  const client = new Redis(url, connectionOptions(role));
  // Connection errors are retried by ioredis; without a listener they would crash the process.
  client.on('error', () => undefined);
  return client;
}
