/** What `upscale enqueue` runs (src/cli/commands/enqueue.ts defines its flags). Loaded only when it runs. */
import { loadConfig } from '../../config/index.js';
import {
  checkEnqueueOptions,
  checkInputFile,
  enqueueLines,
  isInputError,
  parseInput,
  type EnqueueOptions,
  type EnqueueProgress,
  type ParsedLine,
} from '../../producer/index.js';
import { DEFAULT_PRIORITY } from '../../queue/fair-share.js';
import { checkBatchId, newBatchId } from '../../queue/identity.js';
import { createRuntime } from '../../runtime.js';
import { setBatchBudget } from '../../worker/budget.js';
import { deadlineWarning, parseDeadline, readBudgetShare, setBatchDeadline, windowFit } from '../../batch/deadline.js';
import { declarePilot, startPilot } from '../../batch/pilot.js';
import { allowAnimated } from '../../worker/input-policy.js';
import { preflightLines } from '../../worker/check-lines.js';
import { modelFlagNeeded, UsageError } from '../usage-error.js';
import type { EnqueueCliOptions } from '../commands/enqueue.js';

/** A one-line progress display redrawn in place with `\r`, at most 10 times a second. */
class ProgressLine {
  private lastDraw = 0;
  private shown = false;
  private readonly started = Date.now();

  constructor(private readonly out: NodeJS.WriteStream) {}

  update(p: EnqueueProgress, force = false): void {
    const now = Date.now();
    if (!force && now - this.lastDraw < 100) return;
    this.lastDraw = now;
    const n = (v: number) => v.toLocaleString('en-US');
    const rate = Math.round(p.read / Math.max(0.001, (now - this.started) / 1000));
    let bar = '';
    if (p.totalBytes) {
      const done = Math.min(1, (p.bytesRead ?? 0) / p.totalBytes);
      bar = `[${'#'.repeat(Math.round(done * 20)).padEnd(20, '-')}] ${String(Math.round(done * 100)).padStart(3)}% `;
    }
    const text = `${bar}${n(p.read)} lines · ${n(p.enqueued)} enqueued · ${n(p.duplicates)} dup · ${n(p.rejected)} rejected · ${n(rate)}/s`;
    this.out.write(`\r${text.slice(0, Math.max(20, (this.out.columns || 80) - 1))}\x1b[K`);
    this.shown = true;
  }

  clear(): void {
    if (this.shown) this.out.write('\r\x1b[K');
  }
}

/** Checks the flags before anything is opened or stored; returns the library options. */
function checkOptions(
  file: string | undefined,
  opts: EnqueueCliOptions,
): EnqueueOptions & { batchId: string } {
  if (file === undefined && opts.url.length === 0) {
    throw new UsageError(
      'nothing to enqueue: give a FILE (.txt, .csv, .jsonl, or - for standard input) and/or --url URL, ' +
        'for example `upscale enqueue images.txt --model topaz/image-upscale --factor 4`',
    );
  }
  if (opts.format !== undefined && file === undefined) {
    throw new UsageError('--format describes FILE; it does not apply to --url values');
  }
  if (opts.encoding !== undefined && file === undefined) {
    throw new UsageError('--encoding describes FILE; it does not apply to --url values');
  }
  if (opts.batch !== undefined) {
    const problem = checkBatchId(opts.batch);
    if (problem) throw new UsageError(`--batch: ${problem}`);
  }
  if (opts.deadline !== undefined) {
    try {
      parseDeadline(opts.deadline);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  if (opts.pilot !== undefined && !/^\d{1,9}$/.test(opts.pilot.trim()) || opts.pilot?.trim() === '0') {
    throw new UsageError(`--pilot "${opts.pilot}" must be a whole number of images ≥ 1 (e.g. --pilot 20)`);
  }
  if (opts.maxCredits !== undefined && parseCredits(opts.maxCredits) === null) {
    throw new UsageError(`--max-credits "${opts.maxCredits}" must be a number of credits ≥ 0 (e.g. --max-credits 500)`);
  }
  const options: EnqueueOptions & { batchId: string } = { batchId: opts.batch ?? newBatchId() };
  if (opts.model !== undefined) options.model = opts.model;
  if (opts.factor !== undefined) options.factor = opts.factor;
  if (opts.priority !== undefined) options.priority = opts.priority;
  try {
    checkEnqueueOptions(options);
  } catch (e) {
    if (isInputError(e)) throw new UsageError(`--${(e as Error).message}`);
    throw e;
  }
  return options;
}

function parseCredits(text: string): number | null {
  const n = Number(text.trim());
  return /^\d+(\.\d+)?$/.test(text.trim()) && Number.isFinite(n) ? n : null;
}

/** Checks the flags, reads the input and enqueues it; sets the exit code (1 when some lines were rejected). */
export async function runEnqueue(file: string | undefined, opts: EnqueueCliOptions): Promise<void> {
  const options = checkOptions(file, opts);
  if (file !== undefined && file !== '-') {
    try {
      await checkInputFile(file);
    } catch (e) {
      if (isInputError(e)) throw new UsageError((e as Error).message);
      throw e;
    }
  }
  if (file === '-' && process.stdin.isTTY) {
    process.stderr.write('Reading images from standard input, one a line; end with Ctrl-D.\n');
  }
  const progress = process.stderr.isTTY ? new ProgressLine(process.stderr) : null;
  const bytes: Partial<EnqueueProgress> = {};
  let firstUrlLine = 1;
  async function* lines(): AsyncGenerator<ParsedLine> {
    let last = 0;
    if (file !== undefined) {
      const parsed = parseInput(file, opts.format, {
        ...(opts.encoding ? { encoding: opts.encoding } : {}),
        onOpen: (info) =>
          Object.assign(
            bytes,
            { bytesRead: 0 },
            info.size === undefined ? {} : { totalBytes: info.size },
          ),
        onBytes: (b) => (bytes.bytesRead = (bytes.bytesRead ?? 0) + b),
      });
      for await (const p of parsed) {
        last = p.line;
        yield p;
      }
    }
    firstUrlLine = last + 1;
    for (const [i, url] of opts.url.entries()) yield { line: last + i + 1, input: url };
  }
  if (progress) options.onProgress = (p) => progress.update(p);

  const config = loadConfig();
  const input = opts.check
    ? preflightLines(lines(), {
        defaultModel: options.model,
        defaultFactor: options.factor,
        preflight: { allowPrivate: config.allowPrivateUrls, allowAnimated: opts.allowAnimated === true },
      })
    : lines();
  const rt = createRuntime(config);
  try {
    const maxCredits = opts.maxCredits === undefined ? null : parseCredits(opts.maxCredits);
    // The budget, deadline and pilot are in place before the first job is added, so no worker misses them.
    if (maxCredits !== null) await setBatchBudget(rt, options.batchId, maxCredits);
    const deadlineAt = opts.deadline === undefined ? null : parseDeadline(opts.deadline);
    if (deadlineAt !== null) await setBatchDeadline(rt, options.batchId, deadlineAt);
    const pilot = opts.pilot === undefined ? null : Number(opts.pilot);
    if (pilot !== null) await declarePilot(rt, options.batchId, pilot);
    // What shares the create budget before these images join it (the scheduler's fair share, not FIFO).
    const share = deadlineAt === null ? null : await readBudgetShare(rt, options.batchId);
    if (opts.allowAnimated) await allowAnimated(rt, options.batchId);
    const result = await enqueueLines(rt, input, options, () => ({ ...bytes })).catch((e: unknown) => {
      throw isInputError(e) ? new UsageError((e as Error).message) : e;
    });
    progress?.clear();
    const { batchId, enqueued, duplicates, rejected, warnings: lineWarnings } = result;
    const nothingIn = enqueued + duplicates === 0;
    const noModel = modelFlagNeeded(options.model, enqueued + duplicates, rejected);
    if (noModel) throw noModel;
    // A new batch that got no image does not exist: its id is not printed as if it did.
    const batchExists = !nothingIn || ((await rt.store.getSummary(batchId))?.total ?? 0) > 0;
    const pilotReleased = pilot === null ? null : await startPilot(rt, batchId, pilot);
    const warnings: string[] = result.batchPaused === undefined ? [] : [result.batchPaused];
    if (deadlineAt !== null && share !== null) {
      const priority = (await rt.store.getSummary(batchId))?.priority ?? DEFAULT_PRIORITY;
      const fit = windowFit({ images: enqueued, ahead: share.admitted, own: share.own, competitors: share.competitors, priority, createLimit: config.createLimit, deadlineAt, now: Date.now() });
      const warning = deadlineWarning(fit, { images: enqueued, share, priority, createLimit: config.createLimit });
      if (warning) warnings.push(warning);
    }
    if (enqueued + duplicates + rejected.length === 0) {
      process.stderr.write(
        `upscale: no images in ${file === '-' ? 'standard input' : (file ?? 'the input')}\n`,
      );
    }
    if (opts.json) {
      const extra = {
        ...(deadlineAt === null ? {} : { deadlineAt }),
        ...(pilotReleased === null ? {} : { pilot: pilotReleased }),
        ...(warnings.length === 0 ? {} : { batchWarnings: warnings }),
        // The id was made or given, but no batch holds it: said, so a script does not go looking for it.
        ...(batchExists ? {} : { batchCreated: false }),
      };
      process.stdout.write(JSON.stringify({ batchId, enqueued, duplicates, rejected, warnings: lineWarnings, ...extra }) + '\n');
    } else {
      const lines = [
        `batch ${batchId}: ${enqueued} enqueued, ${duplicates} duplicates, ${rejected.length} rejected` +
          (maxCredits === null ? '' : `; credit budget ${maxCredits}`) +
          (deadlineAt === null ? '' : `; deadline ${new Date(deadlineAt).toISOString()}`) +
          (pilotReleased === null ? '' : `; pilot of ${pilotReleased} submitted first, the rest held until \`upscale approve --batch ${batchId}\``),
      ];
      for (const w of warnings) lines.push(`warning: ${w}`);
      const where = (line: number) =>
        file !== undefined && line < firstUrlLine ? `line ${line}` : `--url ${line - firstUrlLine + 1}`;
      for (const r of rejected) lines.push(`${where(r.line)}: ${r.input}: ${r.reason}`);
      for (const w of lineWarnings) lines.push(`${where(w.line)}: ${w.input}: warning: ${w.reason}`);
      if (!batchExists) lines[0] += `; nothing enqueued, so batch ${batchId} was not created`;
      process.stderr.write(lines.join('\n') + '\n');
      if (batchExists) process.stdout.write(batchId + '\n');
    }
    process.exitCode = rejected.length > 0 ? 1 : 0;
  } finally {
    progress?.clear();
    await rt.close();
  }
}
