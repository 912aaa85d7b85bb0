/**
 * Imported first by src/cli/index.ts, before commander, zod and the rest allocate anything: for `upscale worker`,
 * V8's young generation stays at its start-up size (src/worker/heap-trim.ts explains why, and why it must be this
 * early: a grown young generation does not shrink back). Other commands keep V8's defaults.
 */
import { keepYoungGenerationSmall } from '../worker/heap-trim.js';

if (process.argv[2] === 'worker') keepYoungGenerationSmall();
