import { afterEach } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { deletePrefix, freshPrefix, testRedisUrl } from './redis.js';

/**
 * Runtimes on the test Redis, each under a fresh prefix, closed and their keys deleted after each test. Call at the
 * top of a describe block (it registers an afterEach); the returned function makes one (`env` beside REDIS_URL,
 * UPSCALE_PREFIX and a silent log).
 */
export function testRuntimes(label: string): (env?: Record<string, string>) => Runtime {
  const made: { rt: Runtime; prefix: string }[] = [];
  afterEach(async () => {
    for (const { rt, prefix } of made.splice(0)) {
      await rt.close();
      await deletePrefix(testRedisUrl(), prefix);
    }
  });
  return (env = {}) => {
    const prefix = freshPrefix(label);
    const rt = createRuntime(loadConfig({}, { REDIS_URL: testRedisUrl(), UPSCALE_PREFIX: prefix, LOG_LEVEL: 'silent', ...env }));
    made.push({ rt, prefix });
    return rt;
  };
}
