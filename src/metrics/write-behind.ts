/**
 * Values gathered in memory and written to Redis together: one pipeline at most every `delayMs` instead of a round
 * trip per update. For figures where losing the last moment's updates to a killed process costs nothing that
 * matters (counters, the poll schedule's samples); the owner calls `flush()` when it stops.
 */
import type { ChainableCommander, Redis } from 'ioredis';

export class WriteBehind<V> {
  private pending = new Map<string, V>();
  private timer: NodeJS.Timeout | null = null;

  /**
   * @param delayMs how long an update may wait before it is written, ms.
   * @param write adds the commands that write one entry (`key` as given to `update`) to the pipeline.
   */
  constructor(
    private readonly redis: Redis,
    private readonly delayMs: number,
    private readonly write: (pipeline: ChainableCommander, key: string, value: V) => void,
  ) {}

  /** Replaces the pending value under `key` with `next(the pending one, or undefined)`; written within `delayMs`. */
  update(key: string, next: (pending: V | undefined) => V): void {
    this.pending.set(key, next(this.pending.get(key)));
    this.timer ??= setTimeout(() => void this.flush().catch(() => undefined), this.delayMs).unref();
  }

  /** Writes every pending entry in one pipeline. Rejects when Redis does (those entries are not written). */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    const p = this.redis.pipeline();
    for (const [key, value] of batch) this.write(p, key, value);
    await p.exec();
  }
}
