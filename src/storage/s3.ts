/**
 * The S3 backend (AWS S3 or any S3-compatible store: MinIO, R2, GCS's XML API, Ceph...), through the AWS SDK v3:
 * `@aws-sdk/client-s3` for HEAD and `@aws-sdk/lib-storage`'s `Upload` for writes. `Upload` sends a body of up to
 * one part in a single PutObject and anything larger as a multipart upload, reading the source as a stream and
 * holding at most `queueSize` parts of `partSize` bytes in memory; S3 shows a multipart object only once it is
 * completed, and `Upload` aborts it on failure, so a partial object is never visible. Each request is retried by
 * the SDK (standard mode, `maxAttempts`) on 5xx, throttling and network errors.
 *
 * The object's sha256 goes in its metadata (`x-amz-meta-sha256`); after the upload a HEAD checks size and sha256.
 * Credentials come from the SDK's default chain (environment, shared config/credentials files and profiles, web
 * identity, container and instance roles) and never appear in our messages; secrets it resolves are registered
 * with the logger's redaction.
 *
 * Request checksums are sent only when an operation requires them (`requestChecksumCalculation: 'WHEN_REQUIRED'`):
 * the SDK's default since 2025 (CRC32 trailers on every upload) is refused by several S3-compatible stores.
 */
import { createReadStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { AbortMultipartUploadCommand, GetObjectCommand, HeadObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { registerSecret } from '../log.js';
import { StorageAuthError, StorageError, StorageUnavailableError } from './errors.js';
import { checkKey } from './file.js';
import type { ObjectBody, PutOptions, PutSource, Storage, StoredObject } from './types.js';

export interface S3StorageOptions {
  bucket: string;
  /** Key prefix without leading or trailing `/`; '' for the bucket's root. */
  prefix: string;
  endpoint?: string | undefined;
  region?: string | undefined;
  forcePathStyle?: boolean;
  /** Explicit credentials (tests); default: the AWS chain. */
  credentials?: S3ClientConfig['credentials'];
  /** Bytes per part of a multipart upload (S3's minimum is 5 MiB). @defaultValue 8 MiB */
  partSize?: number;
  /** Parts uploaded at once per object. @defaultValue 2 */
  queueSize?: number;
  /** AWS_PROFILE (config.s3.profile), named in a "no credentials" error. */
  profile?: AwsProfile | undefined;
  /** Tries of each request, the first included. @defaultValue 4 */
  maxAttempts?: number;
}

const AUTH_CODES = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'AccessDenied',
  'ExpiredToken',
  'InvalidToken',
  'TokenRefreshRequired',
  'AllAccessDisabled',
  'AccountProblem',
  'InvalidClientTokenId',
  'UnrecognizedClientException',
]);

/** Node network error codes: the store cannot be reached (nothing about the object). */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTDOWN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** S3 error codes (and SDK error names) of a store that cannot serve now: throttling, 5xx, timeouts. */
const UNAVAILABLE_CODES = new Set([
  'SlowDown',
  'ServiceUnavailable',
  'InternalError',
  'RequestTimeout',
  'RequestTimeTooSkewed',
  'Throttling',
  'ThrottlingException',
  'TooManyRequests',
  'TimeoutError',
  'RequestTimeoutException',
  'NetworkingError',
]);

interface SdkError {
  name?: string;
  code?: string;
  cause?: { code?: string };
  message?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
}

/** AWS_PROFILE and the shared files the chain reads (config.s3.profile), named in a "no credentials" error. */
export interface AwsProfile {
  name: string;
  credentialsFile: string;
  configFile: string;
}

/** Maps an SDK error to a StorageError whose message names the object and the reason, never a credential. */
export function storageErrorOf(e: unknown, what: string, profile?: AwsProfile): StorageError {
  if (e instanceof StorageError) return e;
  const err = (e ?? {}) as SdkError;
  const code = err.Code ?? err.name ?? 'Error';
  const status = err.$metadata?.httpStatusCode;
  const detail = err.message && err.message !== 'UnknownError' && err.message !== code ? `: ${err.message}` : '';
  const http = status !== undefined ? ` (HTTP ${status})` : '';
  if (code === 'CredentialsProviderError' || /could not (load|resolve) credentials/i.test(err.message ?? '')) {
    if (profile) {
      return new StorageAuthError(
        `${what}: no AWS credentials found for profile "${profile.name}" (AWS_PROFILE): no such profile with credentials in the shared files (${profile.credentialsFile}, ${profile.configFile})`,
      );
    }
    return new StorageAuthError(
      `${what}: no AWS credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with a role)`,
    );
  }
  if (/region is missing/i.test(err.message ?? '')) return new StorageAuthError(`${what}: no S3 region (set S3_REGION)`);
  if (AUTH_CODES.has(code) || status === 401 || status === 403) {
    // A HEAD answer has no body, so no S3 error code: the status is all there is.
    const why = ['Unknown', 'Forbidden', String(status)].includes(code) ? '' : ` (${code}${detail})`;
    return new StorageAuthError(`${what}: the store refused the credentials or permissions${why}${http}`);
  }
  if (code === 'NoSuchBucket') return new StorageAuthError(`${what}: the bucket does not exist (NoSuchBucket)${http}`);
  const sys = err.code ?? err.cause?.code;
  if ((sys !== undefined && NETWORK_CODES.has(sys)) || UNAVAILABLE_CODES.has(code) || (status !== undefined && (status >= 500 || status === 429))) {
    const net = sys !== undefined && !detail.includes(sys) ? ` (${sys})` : '';
    return new StorageUnavailableError(`${what}: ${code}${detail}${net}${http}: the store is unreachable or failing, not the image`);
  }
  return new StorageError(`${what}: ${code}${detail}${http}`, true);
}

/** A key as the path of an `s3://` URL: every `/`-separated part percent-encoded (letters, digits, `-_.~` and the
 * template's `=` stay as they are; `a b?.png` becomes `a%20b%3F.png`). */
export function encodeKey(key: string): string {
  return key
    .split('/')
    .map((s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).replace(/%3D/g, '='))
    .join('/');
}

export class S3Storage implements Storage {
  readonly kind = 's3' as const;
  readonly url: string;
  readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly partSize: number;
  private readonly queueSize: number;
  private secretsRegistered = false;
  private readonly profile: AwsProfile | undefined;

  constructor(options: S3StorageOptions) {
    this.bucket = options.bucket;
    this.profile = options.profile;
    this.prefix = options.prefix;
    this.url = `s3://${this.bucket}${this.prefix === '' ? '' : `/${encodeKey(this.prefix)}`}`;
    this.partSize = Math.max(5 * 1024 * 1024, options.partSize ?? 8 * 1024 * 1024);
    this.queueSize = options.queueSize ?? 2;
    this.client = new S3Client({
      ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
      ...(options.region !== undefined ? { region: options.region } : {}),
      ...(options.credentials !== undefined ? { credentials: options.credentials } : {}),
      forcePathStyle: options.forcePathStyle ?? false,
      maxAttempts: options.maxAttempts ?? 4,
      retryMode: 'standard',
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  /** The object key of `key` (prefix included). */
  objectKey(key: string): string {
    checkKey(key);
    return this.prefix === '' ? key : `${this.prefix}/${key}`;
  }

  /** `s3://bucket/key`, each folder and file name percent-encoded (RFC 3986) so the URL is a valid URL. */
  urlOf(key: string): string {
    return `s3://${this.bucket}/${encodeKey(this.objectKey(key))}`;
  }

  keyOf(url: string): string | null {
    const base = `s3://${this.bucket}/${this.prefix === '' ? '' : `${encodeKey(this.prefix)}/`}`;
    if (!url.startsWith(base)) return null;
    try {
      const key = decodeURIComponent(url.slice(base.length));
      checkKey(key);
      return key;
    } catch {
      return null;
    }
  }

  /** Registers the resolved secret key and session token with the log redaction, once. */
  private async guardSecrets(): Promise<void> {
    if (this.secretsRegistered) return;
    this.secretsRegistered = true;
    try {
      const provider = this.client.config.credentials;
      const creds = typeof provider === 'function' ? await provider() : provider;
      registerSecret(creds.secretAccessKey, creds.sessionToken);
    } catch {
      this.secretsRegistered = false; // the request itself will say what is wrong
    }
  }

  async head(key: string): Promise<StoredObject | null> {
    const Key = this.objectKey(key);
    const url = this.urlOf(key);
    await this.guardSecrets();
    try {
      const h = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key }));
      return { key, url, path: null, size: h.ContentLength ?? 0, sha256: h.Metadata?.sha256 ?? null };
    } catch (e) {
      const err = e as SdkError;
      if (err.$metadata?.httpStatusCode === 404 && err.Code !== 'NoSuchBucket') return null;
      throw storageErrorOf(e, `cannot read ${url}`, this.profile);
    }
  }

  async exists(key: string): Promise<boolean> {
    return (await this.head(key)) !== null;
  }

  async get(key: string): Promise<ObjectBody | null> {
    const Key = this.objectKey(key);
    const url = this.urlOf(key);
    await this.guardSecrets();
    try {
      const got = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key }));
      if (!(got.Body instanceof Readable)) throw new StorageError(`cannot read ${url}: no body stream`, true);
      return { body: got.Body, size: got.ContentLength ?? 0 };
    } catch (e) {
      const err = e as SdkError;
      if (err.$metadata?.httpStatusCode === 404 && err.Code !== 'NoSuchBucket' && err.name !== 'NoSuchBucket') return null;
      throw storageErrorOf(e, `cannot read ${url}`, this.profile);
    }
  }

  async put(key: string, source: PutSource, options: PutOptions = {}): Promise<StoredObject> {
    const Key = this.objectKey(key);
    const url = this.urlOf(key);
    const { signal } = options;
    signal?.throwIfAborted();
    await this.guardSecrets();
    let size: number | undefined;
    let body;
    if ('file' in source) {
      size = (await stat(source.file)).size;
      body = createReadStream(source.file);
    } else {
      body = source;
    }
    const upload = new Upload({
      client: this.client,
      params: {
        Bucket: this.bucket,
        Key,
        Body: body,
        ContentType: options.contentType ?? 'application/octet-stream',
        ...(size !== undefined ? { ContentLength: size } : {}),
        ...(options.sha256 !== undefined ? { Metadata: { sha256: options.sha256 } } : {}),
      },
      partSize: this.partSize,
      queueSize: this.queueSize,
      // We abort ourselves: lib-storage's own abort replaces the upload's error with the abort's when that fails too.
      leavePartsOnError: true,
    });
    // The drain deadline: stop sending parts; the multipart upload is aborted below like any failed one.
    const onAbort = () => void upload.abort().catch(() => undefined);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await upload.done();
    } catch (e) {
      const failure = signal?.aborted ? null : storageErrorOf(e, `cannot write ${url}`, this.profile);
      if (failure === null) {
        await this.abortIncomplete(upload, Key).catch(() => undefined);
        throw signal?.reason;
      }
      await this.abortIncomplete(upload, Key).catch((abortError: unknown) => {
        failure.message += ` (its incomplete upload could not be aborted: ${storageErrorOf(abortError, 'abort').message})`;
      });
      throw failure;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      body.destroy();
    }
    const stored = await this.head(key);
    if (!stored) throw new StorageError(`${url}: not found right after the upload`, true);
    if (size !== undefined && stored.size !== size) {
      throw new StorageError(`${url}: stored ${stored.size} bytes, uploaded ${size}`, true);
    }
    if (options.sha256 !== undefined && stored.sha256 !== options.sha256) {
      throw new StorageError(`${url}: stored sha256 metadata is ${stored.sha256 ?? 'missing'}, expected ${options.sha256}`, true);
    }
    return stored;
  }

  /** Aborts the multipart upload of a failed `Upload`, if it started one, so its parts do not linger (and cost). */
  private async abortIncomplete(upload: Upload, Key: string): Promise<void> {
    const UploadId = (upload as unknown as { uploadId?: string }).uploadId;
    if (UploadId === undefined) return;
    await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId }));
  }

  async stagingDir(): Promise<string> {
    const dir = join(tmpdir(), 'kie-upscale-staging');
    await mkdir(dir, { recursive: true });
    return dir;
  }

  close(): void {
    this.client.destroy();
  }
}
