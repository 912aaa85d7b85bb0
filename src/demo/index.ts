/** The first-run demo (`upscale demo`, `npm run demo`): see run.ts. */
export { runDemo, type DemoOptions } from './run.js';
export { DemoSetupError, findRedis, freePort, pingRedis, type DemoRedis } from './redis.js';
export { demoItems, type DemoItem } from './samples.js';
