/**
 * OUTPUT_URL: where results are stored. `file:///absolute/folder` (OUTPUT_DIR is the same as a file location) or
 * `s3://bucket/optional/prefix`. Credentials never go here: the S3 backend takes them from the AWS chain.
 */
import { fileURLToPath } from 'node:url';

export type OutputLocation =
  | {
      readonly kind: 'file';
      /** Absolute folder. */
      readonly dir: string;
      /** `file:///...` of the folder (nothing secret in it). */
      readonly url: string;
    }
  | {
      readonly kind: 's3';
      readonly bucket: string;
      /** Key prefix without leading or trailing `/` ('' for the bucket's root). */
      readonly prefix: string;
      /** `s3://bucket/prefix` (nothing secret in it). */
      readonly url: string;
    };

/** S3's bucket naming rules (general purpose buckets): 3-63 lower-case letters, digits, `.` and `-`. */
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** Parses OUTPUT_URL; throws an Error whose message says what is wrong and how to write it. */
export function parseOutputUrl(text: string): OutputLocation {
  const value = text.trim();
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(value)?.[1]?.toLowerCase();
  if (scheme === 'file') {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new Error('is not a valid file URL (write file:///absolute/folder)');
    }
    if (url.search !== '' || url.hash !== '') throw new Error('must not have a query or fragment');
    if (url.host !== '') throw new Error(`names host "${url.host}"; write file:///absolute/folder (three slashes)`);
    const dir = fileURLToPath(url).replace(/\/+$/, '') || '/';
    return { kind: 'file', dir, url: `file://${url.pathname.replace(/\/+$/, '')}` };
  }
  if (scheme === 's3') {
    const m = /^s3:\/\/([^/?#]*)(\/[^?#]*)?([?#].*)?$/i.exec(value);
    if (!m) throw new Error('is not an s3:// URL (write s3://bucket/optional/prefix)');
    const [, authority = '', path = '', rest] = m;
    if (authority.includes('@')) {
      throw new Error('must not hold credentials; the S3 backend takes them from the AWS chain (AWS_ACCESS_KEY_ID..., AWS_PROFILE)');
    }
    if (rest !== undefined) throw new Error('must not have a query or fragment');
    if (!BUCKET.test(authority) || authority.includes('..')) {
      throw new Error(`bucket "${authority}" is not a valid bucket name (3-63 lower-case letters, digits, "." and "-")`);
    }
    let prefix: string;
    try {
      prefix = decodeURIComponent(path).replace(/^\/+|\/+$/g, '');
    } catch {
      throw new Error('has a prefix that is not valid percent-encoding');
    }
    if (prefix !== '' && prefix.split('/').some((s) => s === '' || s === '.' || s === '..')) {
      throw new Error(`prefix "${prefix}" has an empty, "." or ".." folder`);
    }
    return { kind: 's3', bucket: authority, prefix, url: `s3://${authority}${prefix === '' ? '' : `/${prefix}`}` };
  }
  throw new Error('must be file:///absolute/folder or s3://bucket/prefix');
}
