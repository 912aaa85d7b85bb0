/**
 * The demo's live progress: one line redrawn in place on a terminal (4 times a second), or a plain line every
 * few seconds when the output is a file or a pipe (only when something changed).
 */
import { formatDuration } from '../config/units.js';
import type { ResultRecord } from '../results/record.js';

export interface ProgressCounts {
  total: number;
  waiting: number;
  submitting: number;
  polling: number;
  succeeded: number;
  failed: number;
  other: number;
  downloaded: number;
}

export function countRecords(records: readonly ResultRecord[], total: number): ProgressCounts {
  const c: ProgressCounts = { total, waiting: 0, submitting: 0, polling: 0, succeeded: 0, failed: 0, other: 0, downloaded: 0 };
  for (const r of records) {
    if (r.state === 'waiting' || r.state === 'submitting' || r.state === 'polling' || r.state === 'succeeded' || r.state === 'failed') c[r.state]++;
    else c.other++;
    if (r.outputPath) c.downloaded++;
  }
  return c;
}

export function progressText(c: ProgressCounts, elapsedMs: number, width = 20): string {
  const done = c.succeeded + c.failed + c.other;
  const filled = c.total === 0 ? 0 : Math.round((done / c.total) * width);
  const parts = [
    `[${'#'.repeat(filled).padEnd(width, '-')}] ${done}/${c.total} done`,
    `${c.waiting} waiting`,
    `${c.submitting} submitting`,
    `${c.polling} upscaling`,
    `${c.succeeded} ok`,
    `${c.failed + c.other} failed`,
    `${c.downloaded} downloaded`,
    formatDuration(elapsedMs),
  ];
  return parts.join(' · ');
}

export class ProgressDisplay {
  private lastText = '';
  private lastPrint = 0;
  private drawn = false;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly started = Date.now(),
    /** Seconds between plain lines when the output is not a terminal. @defaultValue 3000 ms */
    private readonly plainEveryMs = 3000,
  ) {}

  get interactive(): boolean {
    return this.out.isTTY === true;
  }

  update(c: ProgressCounts): void {
    const now = Date.now();
    const text = progressText(c, now - this.started);
    if (this.interactive) {
      this.out.write(`\r${text.slice(0, Math.max(20, (this.out.columns || 100) - 1))}\x1b[K`);
      this.drawn = true;
      return;
    }
    const changed = text.replace(/ · [\d.]+ s$/, '') !== this.lastText.replace(/ · [\d.]+ s$/, '');
    if (changed && now - this.lastPrint >= this.plainEveryMs) {
      this.out.write(text + '\n');
      this.lastText = text;
      this.lastPrint = now;
    }
  }

  /** Ends the display with the final counts on their own line. */
  finish(c: ProgressCounts): void {
    const text = progressText(c, Date.now() - this.started);
    this.out.write(this.interactive && this.drawn ? `\r${text}\x1b[K\n` : text + '\n');
  }
}
