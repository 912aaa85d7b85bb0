/** What `upscale cancel` runs once its flags are checked (src/cli/commands/cancel.ts). Loaded only when it runs. */
import type { Config } from '../../config/index.js';
import { cancel } from '../../control/index.js';
import { createRuntime } from '../../runtime.js';
import { formatCount } from '../../config/units.js';

export async function runCancel(config: Config, batchId: string, opts: { json?: boolean }): Promise<void> {
  const rt = createRuntime(config);
  try {
    const result = await cancel(rt, batchId);
    if (opts.json) {
      console.log(JSON.stringify({ batchId, ...result }));
      return;
    }
    console.log(`Cancelled ${formatCount(result.cancelled, 'image')} of batch ${batchId} that ${result.cancelled === 1 ? 'was' : 'were'} not submitted yet.`);
    if (result.inFlight > 0) {
      console.log(`${formatCount(result.inFlight, 'image')} already submitted or being submitted ${result.inFlight === 1 ? 'is' : 'are'} followed to ${result.inFlight === 1 ? 'its' : 'their'} end.`);
    }
  } finally {
    await rt.close();
  }
}
