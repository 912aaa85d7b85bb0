// `npm run s3:local [-- --port 9000 --bucket upscaled --dir ./.s3-local]`: an S3-protocol server on loopback
// (@20minutes/s3rver, a devDependency; no Docker) with one bucket, for trying OUTPUT_URL=s3://... locally.
// Prints the environment to use; Ctrl-C stops it. Data stays in --dir between runs. Not for production.
/* global process, console */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = /** @type {{ values: { port: string; bucket: string; dir: string } }} */ (parseArgs({
  options: { port: { type: 'string', default: '9000' }, bucket: { type: 'string', default: 'upscaled' }, dir: { type: 'string', default: '.s3-local' } },
}));
// The package ships no types and this script is not type-checked (plain .mjs): the shape is documented here instead.
// eslint-disable-next-line @typescript-eslint/no-unsafe-assignment
const s3rver = /** @type {{ default: new (options: Record<string, unknown>) => { run(): Promise<{ port: number }>; close(): Promise<void> } }} */ (
  /** @type {unknown} */ (await import('@20minutes/s3rver'))
);
const S3rver = s3rver.default;
const directory = resolve(values.dir);
mkdirSync(directory, { recursive: true });
const server = new S3rver({ address: '127.0.0.1', port: Number(values.port), silent: true, directory, configureBuckets: [{ name: values.bucket, configs: [] }] });
const { port } = await server.run();
console.log(`S3-protocol server (s3rver) on http://127.0.0.1:${port}, bucket "${values.bucket}", data in ${directory}
Use with the worker (s3rver's one account is S3RVER / S3RVER):
  export OUTPUT_URL=s3://${values.bucket}/catalogue
  export S3_ENDPOINT=http://127.0.0.1:${port}
  export S3_REGION=us-east-1
  export S3_FORCE_PATH_STYLE=true
  export AWS_ACCESS_KEY_ID=S3RVER
  export AWS_SECRET_ACCESS_KEY=S3RVER
Ctrl-C stops it.`);
const stop = () => void server.close().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
