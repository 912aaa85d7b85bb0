/**
 * Redis connections as BullMQ's production guide sets them: workers (blocking) retry forever
 * (`maxRetriesPerRequest: null`); producers and commands fail fast instead of queueing commands offline.
 * `rediss://` URLs get TLS from ioredis; a password in the URL is used as given.
 *
 * Redis Cluster: with REDIS_CLUSTER_NODES (`host:port,host:port`) the connection is an ioredis `Cluster` over those
 * seed nodes, with the same role options per node and REDIS_URL's scheme (`rediss:` → TLS), user name and password
 * for every node. BullMQ takes a `Cluster` as `connection`; the prefix must carry a hash tag (`{upscale}`, checked
 * by the config) so every key of a queue, and our records and counters beside them, land in one slot, which keeps
 * BullMQ's and our multi-key Lua scripts, MULTI and pipelines legal on a cluster.
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { ClusterNode } from '../config/index.js';

export type ConnectionRole = 'worker' | 'client';

/** ioredis' own option type clashes with exactOptionalPropertyTypes on `replyMapping`, which we never set. */
export type ConnectionOptions = Omit<RedisOptions, 'replyMapping'>;

/** Reconnect with a capped backoff; never give up while the process runs. */
const reconnectDelay = (times: number): number => Math.min(times * 200, 5000);

export function connectionOptions(role: ConnectionRole): ConnectionOptions {
  const base: ConnectionOptions = {
    retryStrategy: reconnectDelay,
    connectionName: `kie-upscale-queue:${role}`,
  };
  return role === 'worker'
    ? { ...base, maxRetriesPerRequest: null, enableReadyCheck: false }
    : { ...base, maxRetriesPerRequest: 3, enableOfflineQueue: true };
}

/** `ClusterOptions` with the per-node options always present (exactOptionalPropertyTypes-friendly). */
export type ClusterConnectionOptions = Omit<ClusterOptions, 'redisOptions'> & {
  redisOptions: Omit<NonNullable<ClusterOptions['redisOptions']>, 'replyMapping'>;
};

/** What every cluster node connection takes from REDIS_URL: TLS for `rediss:`, user name and password. */
function credentialsOf(url: string): Pick<RedisOptions, 'username' | 'password' | 'tls'> {
  const u = new URL(url);
  return {
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

/** Cluster connection attempts a `client` (one-shot command) makes before its queued commands fail. */
export const CLIENT_CLUSTER_ATTEMPTS = 4;

/**
 * Options of a `Cluster` for a role: the per-node options of `connectionOptions(role)` (BullMQ checks a worker's
 * `redisOptions.maxRetriesPerRequest` is null), REDIS_URL's credentials and TLS. A `worker` reconnects forever; a
 * `client` gives up after CLIENT_CLUSTER_ATTEMPTS (the per-node maxRetriesPerRequest does not bound a cluster's
 * own offline queue, so without this a command would wait forever for an unreachable cluster).
 */
export function clusterOptions(url: string, role: ConnectionRole): ClusterConnectionOptions {
  const { retryStrategy: _perNode, enableOfflineQueue: _offline, ...perNode } = connectionOptions(role);
  return {
    clusterRetryStrategy: role === 'worker' ? reconnectDelay : (times) => (times > CLIENT_CLUSTER_ATTEMPTS ? null : reconnectDelay(times)),
    enableOfflineQueue: true,
    // A failover or a slot move answers CLUSTERDOWN/TRYAGAIN for a moment: wait instead of failing the command.
    retryDelayOnClusterDown: 300,
    retryDelayOnTryAgain: 300,
    redisOptions: { ...perNode, ...credentialsOf(url) },
  };
}

/**
 * A connection for `role`: one Redis at `url`, or a Redis Cluster over `clusterNodes` when given (see above).
 * `autoPipelining`: commands issued in the same tick of the event loop go out in one write (ioredis'
 * `enableAutoPipelining`); for a connection shared by many concurrent jobs, never for a blocking one.
 * A `Cluster` is returned typed as `Redis`: it answers the same commands, pipelines, MULTI and Lua calls the
 * project makes (all over keys of one hash-tagged slot), plus `on('error')` and `disconnect()`; no caller needs
 * more, and BullMQ recognises it as a cluster by itself.
 */
export function createRedis(url: string, role: ConnectionRole, clusterNodes?: readonly ClusterNode[], extra: { autoPipelining?: boolean } = {}): Redis {
  const pipelining = extra.autoPipelining ? { enableAutoPipelining: true } : {};
  const client =
    clusterNodes && clusterNodes.length > 0
      ? (new Cluster(
          clusterNodes.map((n) => ({ host: n.host, port: n.port })),
          { ...clusterOptions(url, role), ...pipelining },
        ) as unknown as Redis)
      : new Redis(url, { ...connectionOptions(role), ...pipelining });
  // Connection errors are retried by ioredis; without a listener they would crash the process.
  client.on('error', () => undefined);
  return client;
}

/** True when `client` is a Redis Cluster connection made by `createRedis`. */
export function isCluster(client: Redis): boolean {
  return (client as unknown as { isCluster?: boolean }).isCluster === true;
}
