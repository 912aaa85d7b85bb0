/**
 * pino logging for every module: JSON lines, pretty on a TTY. The API key, Authorization headers, HMAC keys
 * and callback tokens are redacted by path, and `redactSecrets()` scrubs them from free text (error messages).
 */
import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

const REDACT_PATHS = [
  'apiKey',
  '*.apiKey',
  'key',
  '*.key',
  'authorization',
  'Authorization',
  '*.authorization',
  '*.Authorization',
  'headers.authorization',
  '*.headers.authorization',
  'config.headers.Authorization',
  '*.config.headers.Authorization',
  'token',
  '*.token',
  'callBackUrl',
  '*.callBackUrl',
  'callbackUrl',
  '*.callbackUrl',
  'webhookHmacKey',
  '*.webhookHmacKey',
  'callbackSecret',
  '*.callbackSecret',
  'password',
  '*.password',
];

const secrets = new Set<string>();

/** Registers strings that must never appear in a log line (the API key, HMAC key...). */
export function registerSecret(...values: (string | undefined)[]): void {
  for (const v of values) if (v && v.length >= 4) secrets.add(v);
}

/** Replaces every registered secret and every `t=` callback token and Bearer credential in `text`. */
export function redactSecrets(text: string): string {
  let out = text;
  // Most texts hold none of them: look before building a new string (every log line passes here).
  for (const s of secrets) if (out.includes(s)) out = out.split(s).join('[redacted]');
  if (out.includes('t=')) out = out.replace(/([?&]t=)[A-Za-z0-9_-]+/g, '$1[redacted]');
  return BEARER.test(out) ? out.replace(/(Bearer\s+)[^\s"',]+/gi, '$1[redacted]') : out;
}

const BEARER = /Bearer\s/i;

export interface LogOptions {
  level?: string;
  name?: string;
  /** Where to write; default standard error (standard output carries command results). */
  destination?: pino.DestinationStream;
  pretty?: boolean;
}

export function createLogger(options: LogOptions = {}): Logger {
  const pretty = options.pretty ?? (process.stderr.isTTY && !options.destination);
  const base: pino.LoggerOptions = {
    level: options.level ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    hooks: {
      logMethod(args, method) {
        for (let i = 0; i < args.length; i++) {
          const a = args[i];
          if (typeof a === 'string') args[i] = redactSecrets(a);
        }
        method.apply(this, args);
      },
    },
    formatters: {
      log(obj) {
        const err = obj.err;
        if (err instanceof Error) {
          return { ...obj, err: { type: err.name, message: redactSecrets(err.message) } };
        }
        return obj;
      },
    },
  };
  if (options.name) base.name = options.name;
  if (pretty) {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { destination: 2, colorize: true } } });
  }
  return pino(base, options.destination ?? pino.destination(2));
}
