/**
 * The simulator's light mode (`SimOptions.light`, `upscale sim --light`): one real upscale per kind of output,
 * shared by every task of that kind. A kind is the input's bytes (SHA-1), the model and the factor, so two tasks
 * share an output only when sharp would have made the same bytes for both. The shared file is written once and kept
 * (not served under a path of its own); each task serves it under its own result path with its own expiry
 * (`FileStore.alias`). The inspection createTask makes of an input (format and size, by sharp) is kept per input
 * bytes too: the same bytes give the same facts.
 */
import { createHash } from 'node:crypto';
import { inspectImage, type ImageFacts } from './fetch-input.js';
import type { FileStore, StoredFile } from './files.js';
import type { Upscaled, Upscaler } from './upscale.js';

/** What a task of this kind reports and serves. */
export interface SharedOutput {
  file: StoredFile;
  ext: string;
  width: number;
  height: number;
}

const sha1 = (data: Buffer) => createHash('sha1').update(data).digest('hex');

/** Distinct inputs whose facts are kept (the catalogue benchmark uses six); past this, inputs are inspected anew. */
const MAX_FACTS = 10_000;

export class LightOutputs {
  private readonly byKind = new Map<string, Promise<SharedOutput>>();
  private readonly facts = new Map<string, Promise<ImageFacts | null>>();

  constructor(
    private readonly upscaler: Upscaler,
    private readonly files: FileStore,
  ) {}

  /**
   * The shared output of `input` (jpeg, png or webp bytes) for `model` and `factor`, upscaled on the first call of its
   * kind. Rejects as `Upscaler.run` does (bytes sharp cannot read, simulator stopped); a failed kind is tried again
   * by the next task.
   */
  get(input: Buffer, model: string, factor: string | null): Promise<SharedOutput> {
    const kind = `${sha1(input)} ${model} ${factor ?? ''}`;
    let shared = this.byKind.get(kind);
    if (!shared) {
      shared = this.upscaler.run(input, model, factor).then((out: Upscaled) => this.keep(out));
      shared.catch(() => this.byKind.delete(kind));
      this.byKind.set(kind, shared);
    }
    return shared;
  }

  /** `inspectImage(data)`, once per distinct bytes. */
  inspect(data: Buffer): Promise<ImageFacts | null> {
    const key = sha1(data);
    let facts = this.facts.get(key);
    if (!facts) {
      facts = inspectImage(data);
      if (this.facts.size < MAX_FACTS) this.facts.set(key, facts);
    }
    return facts;
  }

  /** Kinds upscaled so far (each cost one sharp resize). */
  get kinds(): number {
    return this.byKind.size;
  }

  private async keep(out: Upscaled): Promise<SharedOutput> {
    const file = await this.files.keep(out.data, out.mimeType);
    return { file, ext: out.ext, width: out.width, height: out.height };
  }
}
