/**
 * A private `redis-server` per test: on a free loopback port, in its own temp dir, optionally with AOF
 * (`appendfsync always`, or `everysec`), a password, TLS, or cluster mode; stopped, started again on the same port and dir, and
 * killed for sure when the test process exits. `startRedisCluster` builds a cluster of such servers with
 * `redis-cli --cluster create`.
 *
 * ```ts
 * const r = await startRedisServer({ aof: true });
 * // REDIS_URL = r.url ... r.restart() ... await r.destroy();
 * ```
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pingRedis } from './redis-url.js';
import { waitFor } from './wait.js';

const exec = promisify(execFile);

export interface RedisServerOptions {
  /** AOF on (`--appendonly yes`), fsynced as `appendfsync` says. @defaultValue false (no persistence) */
  aof?: boolean;
  /**
   * With `aof`: `always` fsyncs at every write; `everysec` once a second, as docker-compose.yml runs Redis (a
   * crash may lose the last second; `SHUTDOWN` and SIGTERM still fsync everything). @defaultValue `always`
   */
  appendfsync?: 'always' | 'everysec';
  /** `--requirepass`. */
  password?: string;
  /** `--cluster-enabled yes` with a node file in the dir. @defaultValue false */
  cluster?: boolean;
  /** Serve TLS on `tlsPort` (a second free port) beside the plain port, with these PEM files. */
  tls?: { certFile: string; keyFile: string; caFile: string };
  /** Extra `--name value` arguments. */
  args?: string[];
}

export interface RedisServer {
  readonly port: number;
  /** The TLS port, when `tls` was given. */
  readonly tlsPort: number | undefined;
  readonly dir: string;
  /** `redis://[:password@]127.0.0.1:PORT`. */
  readonly url: string;
  /** The running process (replaced by `start()`). */
  readonly proc: ChildProcess | null;
  /** How many times the server was started (1 after `startRedisServer`). */
  readonly starts: number;
  /** `redis-cli` against this server (password included); resolves with its standard output. */
  cli(...args: string[]): Promise<string>;
  /**
   * Stops the server: `shutdown` asks it (`redis-cli shutdown`, AOF fsynced), `SIGTERM` is the same by signal,
   * `SIGKILL` is a crash. Resolves once the process is gone.
   */
  stop(how?: 'shutdown' | 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Starts it again on the same port and dir (the AOF is loaded); resolves once it answers PING. */
  start(): Promise<void>;
  restart(how?: 'shutdown' | 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Kills it and removes its dir. Idempotent. */
  destroy(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** A free loopback port; with `withBus`, port + 10000 (the cluster bus) is free too. */
export async function freePort(withBus = false): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 20_000 + Math.floor(Math.random() * 30_000);
    if ((await portFree(port)) && (!withBus || (await portFree(port + 10_000)))) return port;
  }
  throw new Error('no free loopback port found');
}

export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const dir = await mkdtemp(join(tmpdir(), 'kie-redis-'));
  const port = await freePort(options.cluster === true);
  const tlsPort = options.tls ? await freePort() : undefined;
  const auth = options.password ? `:${encodeURIComponent(options.password)}@` : '';
  const url = `redis://${auth}127.0.0.1:${port}`;
  const args = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--dir', dir,
    '--save', '',
    '--logfile', join(dir, 'redis.log'),
    '--daemonize', 'no',
    '--appendonly', options.aof ? 'yes' : 'no',
    ...(options.aof ? ['--appendfsync', options.appendfsync ?? 'always'] : []),
    ...(options.password ? ['--requirepass', options.password] : []),
    ...(options.cluster ? ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '5000'] : []),
    ...(options.tls && tlsPort
      ? ['--tls-port', String(tlsPort), '--tls-cert-file', options.tls.certFile, '--tls-key-file', options.tls.keyFile,
         '--tls-ca-cert-file', options.tls.caFile, '--tls-auth-clients', 'no']
      : []),
    ...(options.args ?? []),
  ];
  let proc: ChildProcess | null = null;
  let starts = 0;
  let destroyed = false;

  const cliArgs = (rest: string[]) => ['-h', '127.0.0.1', '-p', String(port), ...(options.password ? ['--no-auth-warning', '-a', options.password] : []), ...rest];

  async function start(): Promise<void> {
    if (proc && proc.exitCode === null && proc.signalCode === null) throw new Error(`redis-server on ${port} is running`);
    const child = spawn('redis-server', args, { stdio: 'ignore' });
    running.add(child);
    child.once('exit', () => running.delete(child));
    proc = child;
    starts++;
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`redis-server exited ${child.exitCode} (see ${dir}/redis.log)`);
        return pingRedis(url, 500);
      },
      { timeoutMs: 60_000, intervalMs: 50, what: `redis-server on ${port}` },
    );
  }

  async function stop(how: 'shutdown' | 'SIGTERM' | 'SIGKILL' = 'shutdown'): Promise<void> {
    const child = proc;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    if (how === 'shutdown') await exec('redis-cli', cliArgs(['shutdown'])).catch(() => child.kill('SIGTERM'));
    else child.kill(how);
    await gone;
  }

  const server: RedisServer = {
    port,
    tlsPort,
    dir,
    url,
    get proc() {
      return proc;
    },
    get starts() {
      return starts;
    },
    async cli(...rest) {
      return (await exec('redis-cli', cliArgs(rest), { maxBuffer: 64 * 1024 * 1024 })).stdout;
    },
    stop,
    start,
    async restart(how) {
      await stop(how);
      await start();
    },
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      await stop('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    await start();
  } catch (e) {
    await server.destroy();
    throw e;
  }
  return server;
}

export interface RedisCluster {
  readonly servers: readonly RedisServer[];
  /** `127.0.0.1:P1,127.0.0.1:P2,...`, the value of REDIS_CLUSTER_NODES. */
  readonly nodes: string;
  destroy(): Promise<void>;
}

/** `masters` cluster-enabled servers joined by `redis-cli --cluster create` (no replicas); resolves once the cluster is ok. */
export async function startRedisCluster(masters = 3): Promise<RedisCluster> {
  const servers: RedisServer[] = [];
  const destroy = async () => void (await Promise.all(servers.map((s) => s.destroy())));
  try {
    for (let i = 0; i < masters; i++) servers.push(await startRedisServer({ cluster: true }));
    const addresses = servers.map((s) => `127.0.0.1:${s.port}`);
    await exec('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes']);
    await waitFor(
      async () => {
        const infos = await Promise.all(servers.map((s) => s.cli('cluster', 'info')));
        return infos.every((i) => i.includes('cluster_state:ok') && /cluster_known_nodes:(\d+)/.exec(i)?.[1] === String(masters));
      },
      { timeoutMs: 30_000, intervalMs: 200, what: 'the cluster to be ok' },
    );
    return { servers, nodes: addresses.join(','), destroy };
  } catch (e) {
    await destroy();
    throw e;
  }
}
