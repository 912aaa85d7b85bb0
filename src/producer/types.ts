/** The producer's public types: what goes in (items, input files), what comes out (counts and rejections). */

/** One image to enqueue. `model` and `factor` override the defaults of `EnqueueOptions`. */
export interface EnqueueItem {
  /** An http(s) URL, a local path (relative to the process cwd) or a `file://` URL. */
  input: string;
  model?: string;
  factor?: string | number;
  /**
   * Extra fields kept with the image as `meta` (searchable on the batch page, exported, usable by naming
   * templates). Numbers and booleans become text; empty values are left out. Bounds: see `src/producer/meta.ts`.
   */
  meta?: Record<string, string | number | boolean | null>;
  /** Where the item came from, for rejections. @defaultValue its 1-based position in the items */
  line?: number;
}

/** Progress of a running enqueue, reported after each chunk. */
export interface EnqueueProgress {
  /** Lines (items) read so far, accepted or not. */
  read: number;
  enqueued: number;
  duplicates: number;
  rejected: number;
  /** Bytes read from the input file so far (file and stream sources only). */
  bytesRead?: number;
  /** Size of the input file, when it is a regular file. */
  totalBytes?: number;
}

export interface EnqueueOptions {
  /** The batch to add the images to; an existing batch is extended. @defaultValue a new id from `newBatchId()` */
  batchId?: string;
  /** Model of items that name none. @defaultValue none: such items are rejected ("no model given") */
  model?: string;
  /**
   * Factor of items that give none. Applied only to models that take a factor, so it does not spoil a line that
   * names `recraft/crisp-upscale`. @defaultValue the model's own default (`2` for topaz/image-upscale)
   */
  factor?: string | number;
  /**
   * The batch's share of the create budget among batches with waiting images: `high`, `normal`, `low` weigh
   * 4 : 2 : 1, `urgent` goes before all others. Given for an existing batch, it changes that batch's priority.
   * @defaultValue the batch's current priority; `normal` for a new batch
   */
  priority?: string;
  /** Images written to Redis per round trip (records first, then BullMQ jobs). @defaultValue 1000 */
  chunkSize?: number;
  /**
   * How results will be named (the OUTPUT_NAME template, checked against every line; pinned on the batch).
   * @defaultValue the config's OUTPUT_NAME
   */
  outputName?: string;
  /** Called after each chunk is stored and once at the end. */
  onProgress?: (p: EnqueueProgress) => void;
  /**
   * Create the images `held` (records, no submit jobs) until `upscale approve` releases them: a pilot's batch.
   * @defaultValue true when the batch has a pilot that was not approved yet, else false
   */
  hold?: boolean;
}

/** Encodings an input file may be read in (`upscale enqueue --encoding`); `latin1` is read as Windows-1252. */
export const INPUT_ENCODINGS = ['utf-8', 'utf-16le', 'utf-16be', 'windows-1252', 'latin1'] as const;
export type InputEncoding = (typeof INPUT_ENCODINGS)[number];

/** Input formats of `enqueueFile` / `parseInput`. */
export type InputFormat = 'txt' | 'csv' | 'jsonl';
export const INPUT_FORMATS: readonly InputFormat[] = ['txt', 'csv', 'jsonl'];

export interface EnqueueFileOptions extends EnqueueOptions {
  /** @defaultValue by extension (.txt, .csv, .jsonl/.ndjson), else sniffed from the first meaningful line */
  format?: InputFormat;
  /**
   * The file's text encoding (`utf-8`, `utf-16le`, `utf-16be`, `windows-1252`, `latin1` = Windows-1252).
   * @defaultValue from its byte order mark, else UTF-16 by its NUL bytes, else UTF-8 (lines.ts)
   */
  encoding?: InputEncoding;
}

/** A line (or item) that was not enqueued, and why. */
export interface Rejection {
  /** 1-based physical line of the input file (or position of the item). */
  line: number;
  /** The input as given, control characters escaped, cut to about 200 characters. */
  input: string;
  reason: string;
}

export interface EnqueueResult {
  batchId: string;
  /** Images new to the batch. */
  enqueued: number;
  /** Images the batch already had (from an earlier run, or repeated in this input). */
  duplicates: number;
  rejected: Rejection[];
  /**
   * Enqueued lines with a warning: a presigned link that will likely expire before its estimated submission
   * (the record keeps it as `inputWarning`).
   */
  warnings: Rejection[];
  /**
   * Present when the batch is paused (`upscale pause --batch`) as the enqueue ends: a warning that its new images
   * hold until `upscale resume --batch <id>`. Absent otherwise.
   */
  batchPaused?: string;
}

/**
 * One line of an input file as parsed (before validation): the image it names, or the reason it could not be
 * read. Blank lines and comments yield nothing.
 */
export interface ParsedLine {
  /** 1-based physical line in the file (the first line of a CSV record that spans several). */
  line: number;
  /** The input, trimmed; for an unreadable line, the start of its text. */
  input: string;
  model?: string;
  factor?: string | number;
  /** The line's extra columns (CSV) or fields (JSONL), not yet checked against the meta bounds. */
  meta?: Record<string, string>;
  /** Set when the line could not be read (too long, not text, broken CSV quoting, invalid JSON...). */
  reason?: string;
}

/** Longest input line accepted, in characters (without the line break). */
export const MAX_LINE_CHARS = 8192;
/** How much of a rejected input is shown back. */
export const DISPLAY_CHARS = 200;

// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/g;

/** Escapes control characters and shortens `s` for display in a rejection. */
export function displayInput(s: string): string {
  const short = s.length > DISPLAY_CHARS ? s.slice(0, DISPLAY_CHARS) : s;
  const escaped = short.replace(CONTROL_CHARS, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return s.length > DISPLAY_CHARS ? `${escaped}…` : escaped;
}
