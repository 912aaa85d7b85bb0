/** Every `upscale` command, registered in the order `upscale --help` lists them. One import line per command. */
import type { Command } from 'commander';

type Register = (program: Command) => void;

const registrations: Register[] = [
  // one entry per command, e.g. registerSim
];

export function registerCommands(program: Command): void {
  for (const register of registrations) register(program);
}
