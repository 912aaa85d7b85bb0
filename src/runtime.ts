/**
 * The shared parts every process needs, built once from the config: Redis connection, the lanes' queues,
 * the results store, the kie.ai client and the logger. Commands, workers, the server and tests take one of these.
 */
import type { Redis } from 'ioredis';
import type { Config } from './config/index.js';
import { KieClient } from './kie/client.js';
import { createLogger, registerSecret, type Logger } from './log.js';
import { createRedis, type ConnectionRole } from './queue/connection.js';
import { createQueues, closeQueues, type Queues } from './queue/queues.js';
import { ResultStore } from './results/store.js';

export interface Runtime {
  readonly config: Config;
  readonly redis: Redis;
  readonly queues: Queues;
  readonly store: ResultStore;
  readonly kie: KieClient;
  readonly log: Logger;
  close(): Promise<void>;
}

export interface RuntimeOptions {
  log?: Logger;
  /**
   * `worker`: commands wait through Redis outages and reconnect forever (worker processes, the server).
   * `client`: commands fail fast (one-shot CLI commands). @defaultValue `client`
   */
  role?: ConnectionRole;
}

export function createRuntime(config: Config, options: RuntimeOptions = {}): Runtime {
  registerSecret(config.apiKey, config.webhookHmacKey, config.callbackSecret, config.dashboardPassword, config.notifySecret);
  const log = options.log ?? createLogger({ level: config.logLevel });
  // Shared by every job of the process (records, gates, queues' adds): concurrent commands share a write.
  const redis = createRedis(config.redisUrl, options.role ?? 'client', config.redisClusterNodes, { autoPipelining: true });
  let lastErrorLog = 0;
  const queues = createQueues(redis, config.prefix, (lane, err) => {
    // Redis being away shows up once per queue per reconnect attempt: say it at most every 10 s.
    if (Date.now() - lastErrorLog < 10_000) return;
    lastErrorLog = Date.now();
    log.warn({ lane, err }, 'Redis connection problem (reconnecting)');
  });
  const store = new ResultStore(redis, config.prefix, config.resultRetentionMs);
  const kie = KieClient.fromConfig(config);
  let closed = false;
  return {
    config,
    redis,
    queues,
    store,
    kie,
    log,
    async close() {
      if (closed) return;
      closed = true;
      await closeQueues(queues);
      redis.disconnect();
    },
  };
}
