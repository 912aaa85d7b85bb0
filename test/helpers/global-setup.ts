import type { TestProject } from 'vitest/node';
import { resolveTestRedis } from './redis-url.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const redis = await resolveTestRedis();
  project.provide('redisUrl', redis.url);
  return () => redis.stop();
}
