/** What `upscale pause` runs once its flags are checked (src/cli/commands/pause.ts). Loaded only when it runs. */
import type { Config } from '../../config/index.js';
import { pause, pauseBatch } from '../../control/index.js';
import type { Lane } from '../../queue/names.js';
import { createRuntime } from '../../runtime.js';
import { formatCount } from '../../config/units.js';

/** `upscale pause [--lanes ...]`: pauses the lanes for every worker. */
export async function runPause(config: Config, lanes: Lane[], opts: { json?: boolean }): Promise<void> {
  const rt = createRuntime(config);
  try {
    const results = await pause(rt, { lanes });
    if (opts.json) {
      console.log(JSON.stringify({ paused: results }));
      return;
    }
    for (const r of results) {
      console.log(
        r.alreadyPaused
          ? `${r.lane} lane was already paused (${r.reason.code}: ${r.reason.message}).`
          : `Paused the ${r.lane} lane for every worker.`,
      );
    }
    if (lanes.includes('submit') && !lanes.includes('poll')) {
      console.log('No new tasks are submitted; tasks already submitted are still followed to their end.');
    }
    console.log('Run `upscale resume` to continue.');
  } finally {
    await rt.close();
  }
}

/** `upscale pause --batch ID`: pauses one batch. */
export async function runPauseBatch(config: Config, batchId: string, opts: { json?: boolean }): Promise<void> {
  const rt = createRuntime(config);
  try {
    const r = await pauseBatch(rt, batchId);
    if (opts.json) {
      console.log(JSON.stringify(r));
      return;
    }
    // Every image of it not sent yet is held, whether it waits for its turn or was already admitted to the queue.
    const n = (await rt.store.getSummary(batchId))?.counts.waiting ?? r.held;
    const waiting = n > 0 ? `its ${formatCount(n, 'waiting image')} ${n === 1 ? 'stays' : 'stay'} unsubmitted` : 'none of its images waits to be submitted now; images added later wait';
    console.log(r.alreadyPaused ? `Batch ${batchId} was already paused (${r.gate.reason}).` : `Paused batch ${batchId}: ${waiting}; other batches share the whole create budget.`);
    console.log('Images of it already submitted are followed to their end. Run `upscale resume --batch ' + batchId + '` to continue.');
  } finally {
    await rt.close();
  }
}
