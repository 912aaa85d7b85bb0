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
    if (opts.json) {
      console.log(JSON.stringify(r));
      return;
    }
    if (r.before === r.priority) {
      console.log(`Batch ${batchId} is already at priority ${r.priority}; nothing changed.`);
      return;
    }
    const gate = (await rt.store.getSummary(batchId))?.gate ?? null;
    const take = r.held === 1 ? 'takes its turn' : 'take turns';
    const once = gate ? ` once the batch is resumed (\`upscale resume --batch ${batchId}\`; it is ${gate.state}: ${gate.reason})` : '';
    console.log(`Batch ${batchId}: priority ${r.before} → ${r.priority}${r.held > 0 ? ` (${formatCount(r.held, 'waiting image')} ${take} at the new priority${once})` : ''}.`);
  } finally {
    await rt.close();
  }
}
