/**
 * `upscale enqueue [FILE|-] [--url URL]... [--model M] [--factor F] [--batch ID] [--format txt|csv|jsonl] [--json]`
 *
 * - FILE is .txt (a URL or path a line), .csv (header with `url`, optional `model`, `factor`) or .jsonl (an object a
 *   line); `-` reads standard input. `--url` adds single images (numbered after the file's lines in rejections).
 *   `--encoding` names FILE's text encoding (utf-8, utf-16le, utf-16be, windows-1252, latin1); default: from its
 *   byte order mark, else UTF-8, with a hint on each line that is not UTF-8.
 * - stdout: the batch id alone (so `BATCH=$(upscale enqueue ...)` works); stderr: `batch <id>: N enqueued,
 *   N duplicates, N rejected` and one `line N: <input>: <reason>` per rejected line (`--url N: ...` for the Nth
 *   --url value; in --json its `line` continues after the file's last line, so numbers never collide).
 * - `--json`: stdout gets exactly `{ batchId, enqueued, duplicates, rejected: [{ line, input, reason }] }`.
 * - Exit 0 when every line was accepted (duplicates count as accepted), 1 when some were rejected (the others are
 *   enqueued), 2 for usage errors (no input, unknown model, missing file...).
 * - A one-line progress display on stderr when stderr is a terminal.
 * - `--check`: every image first goes through the submit lane's pre-flight (format, size, output size, private
 *   addresses, complete, still, expiry; the whole image is read, up to 10 MB), and lines that would fail are rejected with `pre-flight: <reason>`.
 * - `--allow-animated`: animated images (more than one frame) pass the pre-flight for the whole batch; without it
 *   they are refused before any credit is spent.
 * - Warnings (a presigned link that will likely expire before its estimated submission) go to stderr as
 *   `line N: <input>: warning: <reason>`, and into `--json`'s `warnings` array; the lines are enqueued.
 * - `--deadline 24h|DATE`: the batch's completion window; images not submitted by then end `expired`. A warning
 *   (stderr, and `batchWarnings` in --json) when the create budget, shared with the other batches as the scheduler
 *   shares it (priority weights, urgent first: src/batch/deadline.ts `windowFit`), cannot submit them all in time.
 * - `--pilot N`: N images spread over the input are submitted first; the rest are held until `upscale approve`
 *   (`pilot` in --json: images released).
 * - `--max-credits N`: the batch's credit budget; workers stop submitting its images once their estimated prices
 *   would pass it, and record the rest `cancelled` (failCode `budget`). Given again, it changes the budget.
 */
import { Option, type Command } from 'commander';
import { MODEL_NAMES } from '../../kie/models.js';
import { INPUT_ENCODINGS, INPUT_FORMATS, type InputEncoding, type InputFormat } from '../../producer/types.js';
import { PRIORITIES } from '../../queue/fair-share.js';

export interface EnqueueCliOptions {
  url: string[];
  model?: string;
  factor?: string;
  batch?: string;
  format?: InputFormat;
  encoding?: InputEncoding;
  json?: boolean;
  check?: boolean;
  maxCredits?: string;
  deadline?: string;
  pilot?: string;
  priority?: string;
  allowAnimated?: boolean;
}

export function register(program: Command): void {
  program
    .command('enqueue')
    .description('Add images to a batch from FILE (.txt, .csv, .jsonl; - for standard input) and/or --url')
    .argument('[file]', 'input file, or - for standard input')
    .option(
      '--url <url>',
      'an image URL or local file to add (repeatable)',
      (v: string, all: string[]) => [...all, v],
      [],
    )
    .option('--model <model>', `model of images that name none (${MODEL_NAMES.join(', ')})`)
    .option('--factor <factor>', 'upscale factor of images that give none (topaz: 1, 2, 4 or 8; default 2)')
    .option('--batch <id>', 'add to this batch (default: a new batch)')
    .addOption(
      new Option('--format <format>', 'format of FILE (default: by extension, else by content)').choices(
        INPUT_FORMATS,
      ),
    )
    .addOption(
      new Option('--encoding <encoding>', "FILE's text encoding (default: its byte order mark, else UTF-8; latin1 reads as windows-1252)").choices(
        INPUT_ENCODINGS,
      ),
    )
    .option('--json', 'print { batchId, enqueued, duplicates, rejected, warnings } as JSON')
    .option('--check', "pre-flight every image now (format, size, output size, address, complete, animation) and reject those that would fail")
    .option('--allow-animated', 'let animated images (more than one frame) through the pre-flight for this batch')
    .option('--max-credits <n>', 'credit budget of the batch: images past it are cancelled, not submitted')
    .option('--deadline <when>', 'completion window: a duration (24h) or a date (2026-12-01T06:00Z); images not submitted by then end `expired`')
    .option('--pilot <n>', 'submit N images spread over the input first; hold the rest until `upscale approve --batch ID`')
    .addOption(
      new Option('--priority <level>', 'share of the create budget: high, normal, low weigh 4 : 2 : 1; urgent goes first (default: normal)').choices(
        PRIORITIES,
      ),
    )
    .action(async (file: string | undefined, opts: EnqueueCliOptions) => {
      // The producer (csv-parse, BullMQ, the pre-flight) loads only when this command runs.
      const { runEnqueue } = await import('../run/enqueue.js');
      await runEnqueue(file, opts);
    });
}
