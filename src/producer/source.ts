/** Opens an input file, standard input or a stream, with a clear error naming the path when it cannot be read. */
import { constants, createReadStream } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { InputError } from './errors.js';

/** A path, `-` for standard input, or a readable stream / async iterable of chunks. */
export type InputSource = string | NodeJS.ReadableStream | AsyncIterable<Buffer | Uint8Array | string>;

export interface SourceInfo {
  /** How messages name it: the path as given, or "standard input" / "stream". */
  name: string;
  /** The path as given, for files. */
  path?: string;
  /** Size in bytes, for regular files. */
  size?: number;
}

export interface OpenedSource {
  info: SourceInfo;
  chunks: AsyncIterable<Buffer | Uint8Array | string>;
}

/** Read size of input files. */
const READ_CHUNK_BYTES = 256 * 1024;

function describe(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  switch (err.code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return `not readable (${err.code}: permission denied)`;
    case 'EISDIR':
      return 'is a directory, not a file';
    case 'ENOTDIR':
      return 'no such file (a part of the path is not a directory)';
    default:
      return err.code ? `cannot be read (${err.code})` : `cannot be read (${err.message})`;
  }
}

/** Checks a path before anything is read: it exists, is not a directory, and can be read. */
export async function checkInputFile(path: string): Promise<{ size?: number }> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    throw new InputError(`${path}: ${describe(e)}`);
  }
  if (st.isDirectory()) throw new InputError(`${path}: is a directory, not a file`);
  try {
    await access(path, constants.R_OK);
  } catch (e) {
    throw new InputError(`${path}: ${describe(e)}`);
  }
  return st.isFile() ? { size: st.size } : {};
}

async function* guarded(name: string, chunks: AsyncIterable<Buffer | Uint8Array | string>) {
  try {
    yield* chunks;
  } catch (e) {
    throw new InputError(`${name}: ${describe(e)}`);
  }
}

export async function openSource(source: InputSource): Promise<OpenedSource> {
  if (source === '-') {
    return { info: { name: 'standard input' }, chunks: process.stdin };
  }
  if (typeof source === 'string') {
    const { size } = await checkInputFile(source);
    const info: SourceInfo =
      size === undefined ? { name: source, path: source } : { name: source, path: source, size };
    return { info, chunks: guarded(source, createReadStream(source, { highWaterMark: READ_CHUNK_BYTES })) };
  }
  return { info: { name: 'stream' }, chunks: source as AsyncIterable<Buffer | Uint8Array | string> };
}
