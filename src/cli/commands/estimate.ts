/**
 * `upscale estimate FILE [--url URL]... [--model M] [--factor F] [--probe] [--json]`: counts the images of an input
 * (the same formats and validation as `upscale enqueue`) and estimates their credits from PRICE_TABLE. Nothing is
 * enqueued and Redis is not needed. `--probe` reads each image's head (as the submit lane's pre-flight does) to
 * price topaz by the real output size and to count out images that would fail.
 *
 * - stdout: a table (model, factor, images, credits) and the total; `--json`: `{ images, credits, rows, assumed,
 *   assumption, probed, prices, rejected: [{ line, input, reason }] }`.
 * - stderr: one `line N: <input>: <reason>` per rejected line. Exit 0 (rejections are reported, not fatal), 2 for
 *   usage errors.
 */
import { Option, type Command } from 'commander';
import { MODEL_NAMES } from '../../kie/models.js';
import { INPUT_ENCODINGS, type InputEncoding } from '../../producer/types.js';
import { UsageError } from '../usage-error.js';

export interface EstimateCliOptions {
  url: string[];
  model?: string;
  factor?: string;
  probe?: boolean;
  json?: boolean;
  encoding?: InputEncoding;
}

export function register(program: Command): void {
  program
    .command('estimate')
    .description('Count the images of FILE (and --url) and estimate their credits; enqueues nothing')
    .argument('[file]', 'input file (.txt, .csv, .jsonl), or - for standard input')
    .option('--url <url>', 'an image URL or local file to add (repeatable)', (v: string, all: string[]) => [...all, v], [])
    .option('--model <model>', `model of images that name none (${MODEL_NAMES.join(', ')})`)
    .option('--factor <factor>', 'upscale factor of images that give none (topaz: 1, 2, 4 or 8; default 2)')
    .option('--probe', "read each image's head to price it by its real size (and count out images that would fail)")
    .option('--json', 'print the estimate as JSON')
    .addOption(new Option('--encoding <encoding>', "FILE's text encoding (as for enqueue)").choices(INPUT_ENCODINGS))
    .action(async (file: string | undefined, opts: EstimateCliOptions) => {
      if (file === undefined && opts.url.length === 0) {
        throw new UsageError('nothing to estimate: give a FILE and/or --url, e.g. `upscale estimate images.txt --model topaz/image-upscale --factor 4`');
      }
      // The parser and the pre-flight (image-size, the producer) load only when this command runs.
      const { runEstimate } = await import('../run/estimate.js');
      await runEstimate(file, opts);
    });
}
