/** Every `upscale` command, registered in the order `upscale --help` lists them. One import line per command. */
import type { Command } from 'commander';
import { register as registerEnqueue } from './enqueue.js';
import { register as registerWorker } from './worker.js';
import { register as registerStatus } from './status.js';
import { register as registerExport } from './export.js';
import { register as registerPause } from './pause.js';
import { register as registerResume } from './resume.js';
import { register as registerRetry } from './retry.js';
import { register as registerCancel } from './cancel.js';
import { register as registerApprove } from './approve.js';
import { register as registerPriority } from './priority.js';
import { register as registerSim } from './sim.js';
import { register as registerServe } from './serve.js';
import { register as registerEstimate } from './estimate.js';
import { register as registerDemo } from './demo.js';

type Register = (program: Command) => void;

const registrations: Register[] = [
  // one entry per command, e.g. registerSim
  registerEnqueue,
  registerWorker,
  registerStatus,
  registerExport,
  registerPause,
  registerResume,
  registerRetry,
  registerCancel,
  registerApprove,
  registerPriority,
  registerSim,
  registerServe,
  registerEstimate,
  registerDemo,
];

export function registerCommands(program: Command): void {
  for (const register of registrations) register(program);
}
