/** What `upscale approve` runs once its flags are checked (src/cli/commands/approve.ts). Loaded only when it runs. */
import type { Config } from '../../config/index.js';
import { approve } from '../../control/index.js';
import { createRuntime } from '../../runtime.js';
import { formatCount } from '../../config/units.js';

export async function runApprove(config: Config, batchId: string, opts: { json?: boolean }): Promise<void> {
  const rt = createRuntime(config);
  try {
    let result: Awaited<ReturnType<typeof approve>>;
    try {
      result = await approve(rt, batchId);
    } catch (e) {
      if (e instanceof RangeError) {
        process.stderr.write(`upscale: ${e.message}\n`);
        process.exitCode = 1;
        return;
      }
      throw e;
    }
    if (opts.json) {
      console.log(JSON.stringify({ batchId, ...result }));
      return;
    }
    console.log(`Approved the pilot of batch ${batchId}: ${formatCount(result.released, 'held image')} released for submission.`);
  } finally {
    await rt.close();
  }
}
