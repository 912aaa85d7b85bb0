/**
 * The body of an HTTP answer as its content: `Content-Encoding` (RFC 9110 section 8.4) is honoured, so a server
 * that gzips an image anyway hands over the image, not its gzip. `gzip`/`x-gzip`, `deflate` (zlib-wrapped, or raw
 * as some servers send it) and `br` are decoded, listed codings in reverse order; `identity` is nothing. Bytes on
 * the wire are counted apart, for the check against Content-Length (which counts the encoded body).
 */
import type { IncomingMessage } from 'node:http';
import { Transform, type Readable } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate, createInflateRaw, type Inflate } from 'node:zlib';
import { FetchRefused } from './ssrf.js';

export interface DecodedBody {
  /** The decoded content. Errors of the transfer or the decoding arrive as stream errors. */
  stream: Readable;
  /** The codings applied, as the server named them (empty for identity). */
  codings: string[];
  /** Bytes received on the wire so far. */
  wireBytes(): number;
}

/** A deflate decoder that takes the zlib-wrapped form (RFC 9110) and the raw form some servers send. */
function inflateEither(): Transform {
  let chosen: Inflate | null = null;
  const front: Transform = new Transform({
    transform(chunk: Buffer, _enc, done) {
      if (chosen === null) {
        // A zlib stream starts with CMF 0x78 (deflate, 32 KiB window); anything else is taken as raw deflate.
        chosen = (chunk[0] ?? 0) === 0x78 ? createInflate() : createInflateRaw();
        chosen.on('data', (d: Buffer) => front.push(d));
        chosen.on('error', (e) => front.destroy(e));
      }
      chosen.write(chunk, () => done());
    },
    flush(done) {
      if (chosen === null) return done();
      chosen.once('end', () => done());
      chosen.end();
    },
  });
  return front;
}

/** Decodes `res` by its Content-Encoding. Throws `FetchRefused` (permanent) for a coding it cannot decode. */
export function decodedBody(res: IncomingMessage): DecodedBody {
  const header = String(res.headers['content-encoding'] ?? '').toLowerCase();
  const codings = header.split(',').map((c) => c.trim()).filter((c) => c !== '' && c !== 'identity');
  let wire = 0;
  res.on('data', (chunk: Buffer) => (wire += chunk.length));
  let stream: Readable = res;
  for (const coding of [...codings].reverse()) {
    const decoder =
      coding === 'gzip' || coding === 'x-gzip'
        ? createGunzip()
        : coding === 'deflate'
          ? inflateEither()
          : coding === 'br'
            ? createBrotliDecompress()
            : null;
    if (decoder === null) {
      res.destroy();
      throw new FetchRefused(`the answer is sent with Content-Encoding "${header}", which cannot be decoded`, true);
    }
    const source = stream;
    source.once('error', (e) => decoder.destroy(e));
    stream = source.pipe(decoder);
  }
  return { stream, codings, wireBytes: () => wire };
}
