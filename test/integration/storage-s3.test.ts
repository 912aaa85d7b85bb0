/**
 * The S3 backend against a real S3-protocol server on loopback (s3rver, test/helpers/s3-server.ts): multipart
 * uploads of a file larger than a part, the sha256 in the object's metadata, a server error and a cut connection
 * in the middle of an upload (retried; nothing visible under the name before completion), a server that keeps
 * failing (the upload is aborted, no object appears), wrong credentials (a clear StorageAuthError without the
 * secret), streams of unknown length, and names that try to leave the prefix.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Storage } from '../../src/storage/s3.js';
import { loadConfig } from '../../src/config/index.js';
import { isStorageAuthError, isStorageUnavailableError, isStoreFault, openStorage, probeStorage, PROBE_KEY, StorageError } from '../../src/storage/index.js';
import { createServer } from 'node:net';
import { S3RVER_CREDENTIALS, startFaultProxy, startS3Server, type Fault, type FaultProxy, type S3TestServer } from '../helpers/s3-server.js';

const MiB = 1024 * 1024;
let s3: S3TestServer;
let proxy: FaultProxy;
let dir: string;
let bigFile: string;
let bigSha: string;

function storage(over: Partial<ConstructorParameters<typeof S3Storage>[0]> = {}) {
  return new S3Storage({
    bucket: 'outputs',
    prefix: 'team/catalogue',
    endpoint: proxy.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: S3RVER_CREDENTIALS,
    partSize: 5 * MiB,
    ...over,
  });
}

/** A client straight to s3rver (not through the proxy), to look at what is stored. */
function direct() {
  return new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: S3RVER_CREDENTIALS });
}

async function objectSha(key: string): Promise<string | null> {
  try {
    const got = await direct().send(new GetObjectCommand({ Bucket: 'outputs', Key: key }));
    return createHash('sha256').update(await got.Body!.transformToByteArray()).digest('hex');
  } catch (e) {
    if ((e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return null;
    throw e;
  }
}

async function visible(key: string): Promise<boolean> {
  try {
    await direct().send(new HeadObjectCommand({ Bucket: 'outputs', Key: key }));
    return true;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  s3 = await startS3Server(['outputs']);
  proxy = await startFaultProxy(s3.endpoint);
  dir = await mkdtemp(join(tmpdir(), 'storage-s3-'));
  bigFile = join(dir, 'big.bin');
  const data = randomBytes(12 * MiB + 12345);
  bigSha = createHash('sha256').update(data).digest('hex');
  await writeFile(bigFile, data);
});

afterAll(async () => {
  await proxy?.stop();
  await s3?.stop();
  await rm(dir, { recursive: true, force: true });
});

const parts = (seen: typeof proxy.seen) => seen.filter((r) => /[?&]partNumber=/.test(r.url));

describe('S3 storage on a real S3-protocol server', () => {
  it('uploads a file larger than a part as a multipart upload, with its sha256 in the metadata', async () => {
    proxy.seen.length = 0;
    proxy.rule = () => 'pass';
    const st = storage();
    const stored = await st.put('b1/big.bin', { file: bigFile }, { sha256: bigSha, contentType: 'image/png' });
    expect(stored).toEqual({ key: 'b1/big.bin', url: 's3://outputs/team/catalogue/b1/big.bin', path: null, size: 12 * MiB + 12345, sha256: bigSha });
    expect(proxy.seen.some((r) => r.method === 'POST' && r.url.includes('?uploads'))).toBe(true);
    expect(parts(proxy.seen).map((r) => /partNumber=(\d+)/.exec(r.url)?.[1]).sort()).toEqual(['1', '2', '3']);
    expect(proxy.seen.some((r) => r.method === 'POST' && r.url.includes('uploadId='))).toBe(true); // complete
    expect(await objectSha('team/catalogue/b1/big.bin')).toBe(bigSha);
    expect(await st.head('b1/big.bin')).toMatchObject({ size: 12 * MiB + 12345, sha256: bigSha });
    expect(await st.head('b1/none.bin')).toBeNull();
    st.close();
  });

  it('retries a part the server fails with a 500 and a part whose connection is cut; nothing is visible before completion', async () => {
    proxy.seen.length = 0;
    const visibleDuringFaults: boolean[] = [];
    proxy.rule = async (req, seen) => {
      const part = /partNumber=(\d+)/.exec(req.url ?? '')?.[1];
      if (part === undefined) return 'pass';
      const before = seen.filter((r) => r.url.includes(`partNumber=${part}&`) || r.url.endsWith(`partNumber=${part}`)).length;
      if (before > 0) return 'pass';
      if (part === '2') {
        visibleDuringFaults.push(await visible('team/catalogue/b1/retried.bin'));
        return '500';
      }
      return part === '3' ? 'reset' : 'pass';
    };
    const st = storage();
    const stored = await st.put('b1/retried.bin', { file: bigFile }, { sha256: bigSha });
    expect(stored.sha256).toBe(bigSha);
    expect(visibleDuringFaults).toEqual([false]);
    const faults = proxy.seen.filter((r) => r.fault !== 'pass').map((r) => `${r.fault} part ${/partNumber=(\d+)/.exec(r.url)?.[1]}`);
    expect(faults.sort()).toEqual(['500 part 2', 'reset part 3']);
    expect(parts(proxy.seen).filter((r) => r.fault === 'pass')).toHaveLength(3);
    expect(await objectSha('team/catalogue/b1/retried.bin')).toBe(bigSha);
    st.close();
  });

  it('a server that keeps failing: the upload is aborted and no object (not even a partial one) appears', async () => {
    proxy.seen.length = 0;
    proxy.rule = (req) => (/partNumber=2/.test(req.url ?? '') ? '500' : 'pass');
    const st = storage({ maxAttempts: 2 });
    const err = await st.put('b1/broken.bin', { file: bigFile }, { sha256: bigSha }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).retryable).toBe(true);
    expect((err as Error).message).toMatch(/cannot write s3:\/\/outputs\/team\/catalogue\/b1\/broken\.bin: InternalError/);
    // Aborted (s3rver does not implement AbortMultipartUpload, and the message says so; S3 and MinIO do).
    expect(proxy.seen.some((r) => r.method === 'DELETE' && r.url.includes('uploadId='))).toBe(true);
    expect(await visible('team/catalogue/b1/broken.bin')).toBe(false);
    proxy.rule = () => 'pass';
    expect(await st.head('b1/broken.bin')).toBeNull();
    st.close();
  });

  it('the drain deadline (an aborted signal) stops a multipart upload mid-way: it is aborted and nothing appears', async () => {
    proxy.seen.length = 0;
    const controller = new AbortController();
    // Part 2 is held until the signal fires, as a slow upload would be when the deadline passes.
    proxy.rule = async (req): Promise<Fault> => {
      if (!/partNumber=2/.test(req.url ?? '')) return 'pass';
      controller.abort(new Error('the drain deadline passed'));
      await new Promise((resolve) => setTimeout(resolve, 200));
      return 'pass';
    };
    const st = storage();
    const err = await st.put('b1/aborted.bin', { file: bigFile }, { sha256: bigSha, signal: controller.signal }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('the drain deadline passed');
    expect(proxy.seen.some((r) => r.method === 'DELETE' && r.url.includes('uploadId='))).toBe(true);
    proxy.rule = () => 'pass';
    expect(await visible('team/catalogue/b1/aborted.bin')).toBe(false);
    expect(await st.exists('b1/aborted.bin')).toBe(false);
    // A signal already aborted sends nothing at all.
    const before = proxy.seen.length;
    await expect(st.put('b1/never.bin', Readable.from(['x']), { signal: controller.signal })).rejects.toThrow('the drain deadline passed');
    expect(proxy.seen.length).toBe(before);
    st.close();
  });

  it('get and exists read back what put stored (the dashboard reads thumbnails this way)', async () => {
    proxy.rule = () => 'pass';
    const st = storage();
    await st.put('b1/.thumbs/j1-out.webp', Readable.from([Buffer.from('webp bytes')]), { contentType: 'image/webp' });
    expect(await st.exists('b1/.thumbs/j1-out.webp')).toBe(true);
    const got = await st.get('b1/.thumbs/j1-out.webp');
    expect(got?.size).toBe(10);
    const chunks: Buffer[] = [];
    for await (const c of got!.body) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('webp bytes');
    expect(await st.get('b1/.thumbs/none.webp')).toBeNull();
    expect(await st.exists('b1/.thumbs/none.webp')).toBe(false);
    st.close();
  });

  it('wrong credentials: a StorageAuthError that says so, without the secret', async () => {
    proxy.rule = () => 'pass';
    const secret = `wrong-${randomBytes(8).toString('hex')}`;
    const st = storage({ credentials: { accessKeyId: 'S3RVER', secretAccessKey: secret } });
    const put = await st.put('b1/x.bin', Readable.from([Buffer.from('hello')])).catch((e: unknown) => e);
    expect(isStorageAuthError(put)).toBe(true);
    expect((put as Error).message).toMatch(/cannot write s3:\/\/outputs\/team\/catalogue\/b1\/x\.bin: the store refused the credentials or permissions \(SignatureDoesNotMatch/);
    const head = await st.head('b1/x.bin').catch((e: unknown) => e);
    expect(isStorageAuthError(head)).toBe(true);
    expect((head as Error).message).toMatch(/: the store refused the credentials or permissions \(HTTP 403\)$/);
    const unknownKey = storage({ credentials: { accessKeyId: 'NOBODY', secretAccessKey: secret } });
    const other = await unknownKey.put('b1/x.bin', Readable.from([Buffer.from('hello')])).catch((e: unknown) => e);
    expect((other as Error).message).toMatch(/InvalidAccessKeyId/);
    for (const e of [put, head, other]) expect(JSON.stringify({ m: (e as Error).message })).not.toContain(secret);
    expect(await visible('team/catalogue/b1/x.bin')).toBe(false);
    st.close();
    unknownKey.close();
  });

  it('stores a stream of unknown length (results.jsonl) and a missing bucket is a clear error', async () => {
    proxy.rule = () => 'pass';
    const st = storage();
    const lines = Array.from({ length: 1000 }, (_, i) => `{"line":${i}}\n`);
    const stored = await st.put('b1/results.jsonl', Readable.from(lines), { contentType: 'application/x-ndjson' });
    expect(stored.size).toBe(lines.join('').length);
    expect(await objectSha('team/catalogue/b1/results.jsonl')).toBe(createHash('sha256').update(lines.join('')).digest('hex'));
    const noBucket = storage({ bucket: 'missing-bucket' });
    const err = await noBucket.put('x.bin', Readable.from([Buffer.from('x')])).catch((e: unknown) => e);
    expect(isStorageAuthError(err)).toBe(true);
    expect((err as Error).message).toMatch(/s3:\/\/missing-bucket\/team\/catalogue\/x\.bin: the bucket does not exist/);
    st.close();
    noBucket.close();
  });

  it('a store that cannot be reached or answers 5xx / 503 SlowDown / cut connections is a store fault, not an object problem', async () => {
    // A port nothing listens on: connection refused, as when the store is down.
    const closed = await new Promise<number>((resolve) => {
      const srv = createServer();
      srv.listen(0, '127.0.0.1', () => {
        const { port } = srv.address() as { port: number };
        srv.close(() => resolve(port));
      });
    });
    const down = storage({ endpoint: `http://127.0.0.1:${closed}`, maxAttempts: 2 });
    for (const op of [() => down.head('b1/DN-2.png'), () => down.put('b1/DN-2.png', Readable.from([Buffer.from('x')])), () => probeStorage(down)]) {
      const err = await op().then(() => null, (e: unknown) => e);
      expect(isStorageUnavailableError(err), String(err)).toBe(true);
      expect(isStoreFault(err)).toBe(true);
      expect((err as Error).message).toMatch(/ECONNREFUSED.*the store is unreachable or failing, not the image$/);
    }
    down.close();
    for (const fault of ['503', '500', 'reset'] as Fault[]) {
      proxy.rule = () => fault;
      const st = storage({ maxAttempts: 2 });
      const err = await st.put(`b1/${fault}.bin`, Readable.from([Buffer.from('small')])).then(() => null, (e: unknown) => e);
      expect(isStorageUnavailableError(err), `${fault}: ${String(err)}`).toBe(true);
      if (fault === '503') expect((err as Error).message).toMatch(/SlowDown.*HTTP 503/);
      proxy.rule = () => 'pass';
      expect(await st.head(`b1/${fault}.bin`)).toBeNull();
      st.close();
    }
    // Refused credentials stay an auth fault (also a store fault); the probe writes one small object and reads it back.
    const wrong = storage({ credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'nope-nope' } });
    const refused = await probeStorage(wrong).then(() => null, (e: unknown) => e);
    expect(isStorageAuthError(refused) && isStoreFault(refused) && !isStorageUnavailableError(refused)).toBe(true);
    wrong.close();
    const st = storage();
    await probeStorage(st);
    expect(await visible(`team/catalogue/${PROBE_KEY}`)).toBe(true);
    st.close();
  });

  it('a profile that does not exist (AWS_PROFILE) is named in the error', async () => {
    const saved = { ...process.env };
    const empty = join(dir, 'no-aws');
    Object.assign(process.env, { AWS_PROFILE: 'catalogue-prod', AWS_SHARED_CREDENTIALS_FILE: join(empty, 'credentials'), AWS_CONFIG_FILE: join(empty, 'config'), AWS_EC2_METADATA_DISABLED: 'true' });
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_SECRET_ACCESS_KEY;
    try {
      // No explicit credentials: the AWS chain, as a deployment runs.
      const config = loadConfig({ ...process.env, OUTPUT_URL: 's3://outputs/p', S3_ENDPOINT: proxy.endpoint, S3_FORCE_PATH_STYLE: 'true' });
      const st = (await openStorage(config))!;
      const err = await probeStorage(st).then(() => null, (e: unknown) => e);
      expect(isStorageAuthError(err), String(err)).toBe(true);
      expect((err as Error).message).toBe(
        `cannot write s3://outputs/p/${PROBE_KEY}: no AWS credentials found for profile "catalogue-prod" (AWS_PROFILE): no such profile with credentials in the shared files (${join(empty, 'credentials')}, ${join(empty, 'config')})`,
      );
      st.close();
    } finally {
      for (const k of ['AWS_PROFILE', 'AWS_SHARED_CREDENTIALS_FILE', 'AWS_CONFIG_FILE', 'AWS_EC2_METADATA_DISABLED', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
  });

  it('refuses names that would leave the prefix', () => {
    const st = storage();
    for (const key of ['../x.png', 'a/../../x.png', '/abs.png', 'a//b.png', 'a\\b.png', '']) {
      expect(() => st.urlOf(key), key).toThrow(/not a valid object name/);
    }
    st.close();
    // outputUrl is a valid URL whatever OUTPUT_URL's (decoded) prefix holds: each part percent-encoded, read back.
    const odd = storage({ prefix: 'team x/a?b#c' });
    expect(odd.url).toBe('s3://outputs/team%20x/a%3Fb%23c');
    const url = odd.urlOf('b1/shop=eu/SKU-1.png');
    expect(url).toBe('s3://outputs/team%20x/a%3Fb%23c/b1/shop=eu/SKU-1.png');
    expect(new URL(url).pathname).toBe('/team%20x/a%3Fb%23c/b1/shop=eu/SKU-1.png');
    expect(odd.keyOf(url)).toBe('b1/shop=eu/SKU-1.png');
    expect(odd.objectKey('b1/x.png')).toBe('team x/a?b#c/b1/x.png');
    odd.close();
  });
});
