/** What `upscale resume` runs once its flags are checked (src/cli/commands/resume.ts). Loaded only when it runs. */
import type { Config } from '../../config/index.js';
import { resume, resumeBatch } from '../../control/index.js';
import type { Lane } from '../../queue/names.js';
import { createRuntime } from '../../runtime.js';
import { formatCount, formatDuration } from '../../config/units.js';

/** `upscale resume --batch ID`: resumes one paused batch. */
export async function runResumeBatch(config: Config, batchId: string, opts: { json?: boolean }): Promise<void> {
  const rt = createRuntime(config);
  try {
    const r = await resumeBatch(rt, batchId);
    if (opts.json) console.log(JSON.stringify(r));
    else if (!r.was) console.log(`Batch ${batchId} was not paused; nothing to resume.`);
    else {
      const n = (await rt.store.getSummary(batchId))?.counts.waiting ?? r.held;
      console.log(`Resumed batch ${batchId} (was ${r.was.state}: ${r.was.reason}); ${n > 0 ? `its ${formatCount(n, 'waiting image')} ${n === 1 ? 'takes its turn' : 'take turns'} again` : 'none of its images was waiting to be submitted'}.`);
    }
  } finally {
    await rt.close();
  }
}

/** `upscale resume [--lanes ...]`: resumes paused lanes and clears why they were paused. */
export async function runResume(config: Config, lanes: Lane[], opts: { json?: boolean }): Promise<void> {
  const rt = createRuntime(config);
  try {
    const result = await resume(rt, { lanes });
    if (opts.json) {
      console.log(JSON.stringify(result));
      return;
    }
    if (result.resumed.length === 0) console.log(`Nothing to resume: ${lanes.join(', ')} ${lanes.length === 1 ? 'was' : 'were'} not paused.`);
    for (const { lane, reason, balanceSetAside } of result.resumed) {
      const why = !reason ? '' : reason.code === 'manual' ? ` (was ${reason.message})` : ` (was paused: ${reason.message.includes(reason.code) ? '' : `${reason.code} `}${reason.message})`;
      console.log(`Resumed the ${lane} lane${why}.`);
      if (balanceSetAside) {
        console.log(
          `The last credit balance read is set aside: images are sent until kie.ai refuses one (402) or the next balance read (within CREDITS_CHECK_INTERVAL, ${formatDuration(config.creditsCheckIntervalMs)}) still shows too few credits.`,
        );
      }
    }
  } finally {
    await rt.close();
  }
}
