/**
 * `upscale sim`: runs the kie.ai simulator (src/sim) until SIGINT/SIGTERM. The key comes from `--key` or
 * KIE_API_KEY, the webhook HMAC key from `--hmac-key` or KIE_WEBHOOK_HMAC_KEY, so one environment drives both
 * the workers and the simulator. Prints `simulator listening on <url>` on standard output.
 */
import type { Command } from 'commander';
import { loadConfig, parseDuration, parseRateLimit } from '../../config/index.js';
import { createLogger, registerSecret } from '../../log.js';
// The simulator itself (sharp, fastify) is loaded only when this command runs: every `upscale` start pays otherwise.
import { DEFAULT_FAULTS, SIM_MODELS, type LatencySpec, type SimFaults, type SimOptions } from '../../sim/options.js';
import { UsageError } from '../usage-error.js';
import { httpUrlProblem } from '../../url-problem.js';

/** The flags as commander hands them over (strings; repeatable ones as arrays). */
export interface SimFlags {
  port: string;
  host: string;
  key: string[];
  timeScale: string;
  createLimit: string;
  queryLimit: string;
  rateLimitStyle: string;
  errorStyle: string;
  failRate?: string;
  credits?: string;
  creditDrain?: string;
  hmacKey?: string;
  seed?: string;
  latency: string[];
  resultTtl?: string;
  publicUrl?: string;
  fault: string[];
  dialect?: string;
  dailyLimit?: string;
  retryAfter?: string;
  oddStates?: string;
  light?: boolean;
  latencyByInput?: boolean;
}

const DEFAULT_PORT = '8790';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

function num(flag: string, text: string, min: number, max = Infinity, integer = false): number {
  const n = Number(text.trim());
  if (text.trim() === '' || !Number.isFinite(n)) throw new UsageError(`${flag} "${text}" is not a number`);
  if (integer && !Number.isInteger(n)) throw new UsageError(`${flag} "${text}" must be a whole number`);
  if (n < min || n > max) {
    throw new UsageError(
      `${flag} "${text}" must be ${max === Infinity ? `at least ${min}` : `from ${min} to ${max}`}`,
    );
  }
  return n;
}

function parsed<T>(flag: string, text: string, parse: (t: string) => T): T {
  try {
    return parse(text);
  } catch (e) {
    throw new UsageError(`${flag} ${(e as Error).message}`);
  }
}

function style(flag: string, text: string): 'http' | 'envelope' {
  if (text !== 'http' && text !== 'envelope')
    throw new UsageError(`${flag} "${text}" must be http or envelope`);
  return text;
}

/** `topaz=20s/60s` or `recraft/crisp-upscale=8s/20s` → [model, spec]. */
function latencyEntry(text: string): [string, LatencySpec] {
  const m = /^([^=]+)=([^/]+)\/(.+)$/.exec(text.trim());
  if (!m)
    throw new UsageError(`--latency "${text}" must look like MODEL=MEDIAN/P95, for example topaz=20s/60s`);
  const name = (m[1] as string).trim();
  const model = SIM_MODELS.find((x) => x === name || x.split('/')[0] === name);
  if (!model)
    throw new UsageError(
      `--latency "${text}": unknown model "${name}" (use ${SIM_MODELS.join(', ')}, or topaz / recraft)`,
    );
  const medianMs = parsed('--latency', m[2] as string, parseDuration);
  const p95Ms = parsed('--latency', m[3] as string, parseDuration);
  if (p95Ms < medianMs)
    throw new UsageError(`--latency "${text}": the p95 must not be shorter than the median`);
  return [model, { medianMs, p95Ms }];
}

/** `serverErrorRate=0.1`, `maintenance=true`, `slowMs=5s` → one fault. */
function faultEntry(text: string): Partial<SimFaults> {
  const m = /^(\w+)=(.+)$/.exec(text.trim());
  const name = m?.[1] as keyof SimFaults | undefined;
  if (!m || !name || !Object.hasOwn(DEFAULT_FAULTS, name)) {
    throw new UsageError(
      `--fault "${text}" must be NAME=VALUE with NAME one of ${Object.keys(DEFAULT_FAULTS).join(', ')}`,
    );
  }
  const value = (m[2] as string).trim();
  if (name === 'maintenance') {
    if (value !== 'true' && value !== 'false')
      throw new UsageError(`--fault maintenance must be true or false`);
    return { maintenance: value === 'true' };
  }
  if (name.endsWith('Ms'))
    return {
      [name]: /^\d+(\.\d+)?$/.test(value) ? Number(value) : parsed(`--fault ${name}`, value, parseDuration),
    };
  return { [name]: num(`--fault ${name}`, value, 0, 1) };
}

/** Turns the flags (and the environment's keys) into simulator options; throws UsageError on a bad value. */
export function simOptionsFromFlags(
  flags: SimFlags,
  env: { apiKey?: string | undefined; webhookHmacKey?: string | undefined },
): SimOptions {
  const apiKeys = flags.key.length > 0 ? flags.key : env.apiKey ? [env.apiKey] : [];
  if (apiKeys.some((k) => k.trim() === '')) throw new UsageError('--key must not be empty');
  if (apiKeys.length === 0) {
    throw new UsageError(
      'the simulator needs the API key it should accept: pass --key KEY or set KIE_API_KEY (the workers use the same one)',
    );
  }
  const timeScale = num('--time-scale', flags.timeScale, 0);
  if (timeScale <= 0) throw new UsageError(`--time-scale "${flags.timeScale}" must be above 0`);
  const opts: SimOptions = {
    apiKeys,
    host: flags.host,
    port: num('--port', flags.port, 0, 65535, true),
    timeScale,
    createLimit: parsed('--create-limit', flags.createLimit, parseRateLimit),
    queryLimit: parsed('--query-limit', flags.queryLimit, parseRateLimit),
    rateLimitStyle: style('--rate-limit-style', flags.rateLimitStyle),
    errorStyle: style('--error-style', flags.errorStyle),
  };
  const dialect = flags.dialect ?? 'live';
  if (dialect !== 'live' && dialect !== 'docs') throw new UsageError(`--dialect "${dialect}" must be live or docs`);
  opts.dialect = dialect;
  if (flags.dailyLimit !== undefined) opts.dailyLimit = num('--daily-limit', flags.dailyLimit, 0, Number.MAX_SAFE_INTEGER, true);
  if (flags.retryAfter !== undefined) {
    const t = flags.retryAfter.trim();
    opts.retryAfter = /^\d+(\.\d+)?$/.test(t) ? Number(t) : t.startsWith('=') ? t.slice(1) : parsed('--retry-after', t, parseDuration) / 1000;
  }
  if (flags.oddStates !== undefined) opts.oddStates = num('--odd-states', flags.oddStates, 0, 1);
  if (flags.failRate !== undefined) opts.failRate = num('--fail-rate', flags.failRate, 0, 1);
  if (flags.credits !== undefined) opts.credits = num('--credits', flags.credits, 0);
  if (flags.creditDrain !== undefined) opts.creditDrain = num('--credit-drain', flags.creditDrain, 0);
  const hmacKey = flags.hmacKey ?? env.webhookHmacKey;
  if (hmacKey !== undefined && hmacKey !== '') opts.webhookHmacKey = hmacKey;
  if (flags.seed !== undefined) opts.seed = num('--seed', flags.seed, 0, 2 ** 32 - 1, true);
  if (flags.latency.length > 0) opts.latency = Object.fromEntries(flags.latency.map(latencyEntry));
  if (flags.resultTtl !== undefined)
    opts.resultTtlMs = parsed('--result-ttl', flags.resultTtl, parseDuration);
  if (flags.publicUrl !== undefined) {
    const problem = httpUrlProblem(flags.publicUrl);
    if (problem !== null) throw new UsageError(`--public-url "${flags.publicUrl}" must be an http(s) URL: ${problem}`);
    opts.publicUrl = flags.publicUrl;
  }
  if (flags.light) opts.light = true;
  if (flags.latencyByInput) opts.latencyByInput = true;
  if (flags.fault.length > 0)
    opts.faults = Object.assign({}, ...flags.fault.map(faultEntry)) as Partial<SimFaults>;
  return opts;
}

/**
 * What `upscale sim` prints once it listens: the address it really listens on, the public URL apart when
 * `--public-url` names another, and the variables that point workers at it (the listen address: the public URL
 * is what the simulator writes into the URLs it hands out, which may be a proxy or another host's view of it).
 */
export function startLines(sim: { listenUrl: string; url: string }, host: string): string[] {
  const listen = sim.listenUrl;
  const wildcard = host === '' || host === '0.0.0.0' || host === '::';
  const lines = [`simulator listening on ${listen}${wildcard ? ` (every interface, ${host || 'all'})` : ''}`];
  const publicUrl = sim.url !== listen ? sim.url : null;
  if (publicUrl !== null) lines.push(`public URL (in the result, upload and file URLs it hands out): ${publicUrl}`);
  lines.push(
    `point workers at it: KIE_BASE_URL=${listen} KIE_UPLOAD_BASE_URL=${listen} (with the same KIE_API_KEY)` +
      (publicUrl !== null ? `, or the public URL where workers reach the simulator through it` : ''),
    `sample inputs: ${listen}/sim/images/<name>-<w>x<h>.<jpg|png|webp> (workers need ALLOW_PRIVATE_URLS=true for them)`,
    `stats: ${listen}/sim/stats   tasks: ${listen}/sim/tasks   faults: POST ${listen}/sim/control`,
  );
  return lines;
}

export function register(program: Command): void {
  program
    .command('sim')
    .description(
      'Run a kie.ai-compatible simulator (same endpoints, limits and failure codes, real upscaling) until Ctrl+C.',
    )
    .option('--port <port>', 'port to listen on (0 picks a free one)', DEFAULT_PORT)
    .option('--host <host>', 'interface to listen on', '127.0.0.1')
    .option('--key <key>', 'API key to accept (repeatable; default KIE_API_KEY)', collect, [])
    .option(
      '--time-scale <n>',
      'speed-up: 10 makes every latency, window, expiry and delay 10 times shorter',
      '1',
    )
    .option('--create-limit <count/window>', 'createTask limit per key, sliding window', '20/10s')
    .option('--query-limit <count/window>', 'recordInfo limit per key, sliding window', '10/1s')
    .option(
      '--rate-limit-style <style>',
      'a 429 as HTTP 429 (http) or HTTP 200 with code 429 (envelope)',
      'envelope',
    )
    .option(
      '--error-style <style>',
      'other errors as their HTTP status (http) or HTTP 200 (envelope)',
      'envelope',
    )
    .option('--dialect <dialect>', 'live (answers as recorded from the live API) or docs (as documented)', 'live')
    .option('--daily-limit <n>', 'createTask answers 433 (daily key limit) past N tasks created in a UTC day')
    .option(
      '--retry-after <seconds>',
      'every 429 carries Retry-After: real seconds (scaled) or a duration like 2m; =TEXT sends TEXT verbatim (invalid values)',
    )
    .option('--odd-states <share>', 'share of tasks reporting unknown state words while running (0 to 1)')
    .option('--fail-rate <share>', 'share of tasks that end in state fail (0 to 1; default 0)')
    .option('--credits <n>', 'starting credit balance (default 100000)')
    .option('--credit-drain <n>', 'credits per simulated second spent elsewhere on the account (default 0; POST /sim/control {"creditDrain": N} changes it)')
    .option('--hmac-key <key>', 'sign callbacks with this webhook HMAC key (default KIE_WEBHOOK_HMAC_KEY)')
    .option('--seed <n>', 'seed of every random draw (default 1)')
    .option(
      '--latency <model=median/p95>',
      'task latency of a model, e.g. topaz=20s/60s (repeatable)',
      collect,
      [],
    )
    .option(
      '--light',
      'upscale once per distinct input, model and factor and serve that output for every such task (runs of many thousands of images on a small machine)',
    )
    .option(
      '--latency-by-input',
      'draw each task\'s latency and outcome from its seed, model, factor and input URL, not in creation order (the same image takes the same time in any run)',
    )
    .option('--result-ttl <duration>', 'result URLs expire after this (default 24h, scaled)')
    .option('--public-url <url>', 'base of the URLs the simulator hands out (default its own address)')
    .option(
      '--fault <name=value>',
      `inject a fault, e.g. serverErrorRate=0.05 (repeatable; ${Object.keys(DEFAULT_FAULTS).join(', ')})`,
      collect,
      [],
    )
    .action(async (flags: SimFlags) => {
      const config = loadConfig();
      const options = simOptionsFromFlags(flags, {
        apiKey: config.apiKey,
        webhookHmacKey: config.webhookHmacKey,
      });
      registerSecret(...options.apiKeys, options.webhookHmacKey);
      options.logger = createLogger({ level: config.logLevel, name: 'sim' });
      const { startSimulator } = await import('../../sim/index.js');
      const sim = await startSimulator(options);
      // One write: a reader that sees the first line sees the rest.
      process.stdout.write(startLines(sim, options.host ?? '127.0.0.1').join('\n') + '\n');
      const signal = await new Promise<string>((resolve) => {
        const on = (s: string) => {
          process.off('SIGINT', on);
          process.off('SIGTERM', on);
          resolve(s);
        };
        process.on('SIGINT', on);
        process.on('SIGTERM', on);
      });
      console.error(`upscale sim: ${signal}, stopping`);
      await sim.stop();
      console.error('upscale sim: stopped');
    });
}
