import { defineConfig } from 'vitest/config';

/**
 * Two groups, one after the other (vitest's `sequence.groupOrder`): the suite, two files at a time (integration
 * tests start worker processes and simulators; two cores do not take many at once), then the chaos suite alone,
 * one file at a time. The chaos runs (1,000 images with kills and a fault storm; 10,000 with kills and a Redis
 * restart) fill both cores with a fleet of processes: beside them, the suite's timing-bound tests (waits for a
 * pause, a drain, a probe) starved, and they themselves measure a throughput the suite would steal.
 */
export default defineConfig({
  test: {
    globalSetup: ['test/helpers/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'suite',
          include: ['test/**/*.test.ts'],
          exclude: ['test/chaos/**'],
          maxWorkers: 2,
          fileParallelism: true,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'chaos',
          include: ['test/chaos/**/*.test.ts'],
          maxWorkers: 1,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
