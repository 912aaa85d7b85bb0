/** What `upscale priority` runs once its flags are checked (src/cli/commands/priority.ts). Loaded only when it runs. */
import type { Config } from '../../config/index.js';
import { setBatchPriority } from '../../control/index.js';
import type { Priority } from '../../queue/fair-share.js';
import { createRuntime } from '../../runtime.js';
import { formatCount } from '../../config/units.js';

export async function runPriority(config: Config, batchId: string, level: Priority, opts: { json?: boolean }): Promise<void> {
  const rt = createRuntime(config);
  try {
    const r = await setBatchPriority(rt, batchId, level);
    if (opts.json) console.log(JSON.stringify(r));
    else console.log(`Batch ${batchId}: priority ${r.before} → ${r.priority} (${formatCount(r.held, 'image')} waiting for their turn take turns at the new priority).`);
  } finally {
    await rt.close();
  }
}
