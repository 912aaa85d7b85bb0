/**
 * Preloaded (`--import`) into every process a benchmark spawns: on a normal exit, appends this process' peak RSS
 * and CPU time (`process.resourceUsage()`) to BENCH_REPORT_FILE as one JSON line. Does nothing without the variable.
 */
import { appendFileSync } from 'node:fs';

const file = process.env.BENCH_REPORT_FILE;
if (file) {
  process.on('exit', () => {
    const u = process.resourceUsage();
    const line = JSON.stringify({ pid: process.pid, maxRssKb: u.maxRSS, userUs: u.userCPUTime, systemUs: u.systemCPUTime });
    try {
      appendFileSync(file, line + '\n');
    } catch {
      // the benchmark falls back to its /proc samples
    }
  });
}
