/**
 * A minimal multipart/form-data parser (RFC 7578) for `POST /api/file-stream-upload`: the body arrives as one
 * Buffer (bounded by the server's body limit), and parts are split on the boundary. No dependency needed.
 */

export interface Part {
  /** The form field name. */
  name: string;
  /** The file name of a file part; undefined for a plain field. */
  filename: string | undefined;
  contentType: string | undefined;
  data: Buffer;
}

/** The boundary of a `multipart/form-data` Content-Type, or null. */
export function boundaryOf(contentType: string | undefined): string | null {
  if (!contentType || !/^multipart\/form-data/i.test(contentType)) return null;
  const m = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return m ? ((m[1] ?? m[2]) as string) : null;
}

function param(header: string, name: string): string | undefined {
  const re = new RegExp(`;\\s*${name}\\*?=(?:"((?:[^"\\\\]|\\\\.)*)"|([^;]*))`, 'i');
  const m = re.exec(header);
  if (!m) return undefined;
  const v = m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : (m[2] ?? '').trim();
  // RFC 5987 form (filename*=UTF-8''name%20x)
  const ext = /^UTF-8''(.*)$/i.exec(v);
  if (ext) {
    try {
      return decodeURIComponent(ext[1] as string);
    } catch {
      return ext[1];
    }
  }
  return v;
}

/** Splits `body` into parts; throws an Error with the reason when it is not well-formed. */
export function parseMultipart(body: Buffer, boundary: string): Part[] {
  const delimiter = Buffer.from(`--${boundary}`);
  const nextDelimiter = Buffer.from(`\r\n--${boundary}`);
  const parts: Part[] = [];
  let pos = body.indexOf(delimiter);
  if (pos < 0) throw new Error('the body does not contain the multipart boundary');
  pos += delimiter.length;
  for (;;) {
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) return parts; // "--": the closing delimiter
    // Skip transport padding and the CRLF after the delimiter.
    while (body[pos] === 0x20 || body[pos] === 0x09) pos++;
    if (body[pos] !== 0x0d || body[pos + 1] !== 0x0a)
      throw new Error('a multipart delimiter is not followed by CRLF');
    pos += 2;
    const headerEnd = body.indexOf('\r\n\r\n', pos);
    if (headerEnd < 0) throw new Error('a multipart part has no end of headers');
    const headers = new Map<string, string>();
    for (const line of body.subarray(pos, headerEnd).toString('utf8').split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const contentStart = headerEnd + 4;
    const end = body.indexOf(nextDelimiter, contentStart);
    if (end < 0) throw new Error('the multipart body has no closing boundary');
    const disposition = headers.get('content-disposition') ?? '';
    if (!/^form-data/i.test(disposition))
      throw new Error('a multipart part has no Content-Disposition: form-data');
    parts.push({
      name: param(disposition, 'name') ?? '',
      filename: param(disposition, 'filename'),
      contentType: headers.get('content-type'),
      data: body.subarray(contentStart, end),
    });
    pos = end + nextDelimiter.length;
  }
}
