import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests start worker processes and simulators; two cores do not take many at once.
    maxWorkers: 2,
    fileParallelism: true,
  },
});
