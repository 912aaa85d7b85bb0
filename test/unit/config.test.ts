import { describe, expect, it } from 'vitest';
import { ConfigError, formatDuration, loadConfig, parseDuration, parseRateLimit } from '../../src/config/index.js';

describe('parseDuration', () => {
  it.each([
    ['15m', 900_000],
    ['30s', 30_000],
    ['500ms', 500],
    ['1h', 3_600_000],
    ['2d', 172_800_000],
    ['1m30s', 90_000],
    ['1.5s', 1500],
  ])('%s → %i ms', (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each([
    ['-3', /negative/],
    ['900', /no unit/],
    ['abc', /not a duration/],
    ['0s', /zero/],
    ['', /empty/],
    ['5 minutes', /not a duration/],
  ])('rejects %j', (text, reason) => expect(() => parseDuration(text)).toThrow(reason));
});

describe('parseRateLimit', () => {
  it('reads COUNT/DURATION and COUNT/UNIT', () => {
    expect(parseRateLimit('20/10s')).toEqual({ max: 20, durationMs: 10_000 });
    expect(parseRateLimit('10/s')).toEqual({ max: 10, durationMs: 1000 });
    expect(parseRateLimit(' 10 / 1s ')).toEqual({ max: 10, durationMs: 1000 });
  });
  it.each(['abc', '0/10s', '20/', '20/-1s', '2.5/1s', '/10s'])('rejects %j', (text) => expect(() => parseRateLimit(text)).toThrow());
});

describe('loadConfig', () => {
  it('has the documented defaults and is frozen', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      kieBaseUrl: 'https://api.kie.ai',
      kieUploadBaseUrl: 'https://kieai.redpandaai.co',
      redisUrl: 'redis://127.0.0.1:6379',
      prefix: 'upscale',
      createLimit: { max: 20, durationMs: 10_000 },
      queryLimit: { max: 10, durationMs: 1000 },
      pollDeadlineMs: 900_000,
      logLevel: 'info',
      allowPrivateUrls: false,
    });
    expect(Object.isFrozen(c)).toBe(true);
    expect(c.publicBaseUrl).toBeUndefined();
  });

  it('lists every bad key in one error', () => {
    let error: unknown;
    try {
      loadConfig({ KIE_CREATE_LIMIT: 'abc', POLL_DEADLINE: '-3', REDIS_URL: 'not a url', LOG_LEVEL: 'loud', SUBMIT_RETRIES: 'x' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems).toHaveLength(5);
    for (const key of ['KIE_CREATE_LIMIT', 'POLL_DEADLINE', 'REDIS_URL', 'LOG_LEVEL', 'SUBMIT_RETRIES']) {
      expect(problems.some((p) => p.startsWith(`${key}:`)), key).toBe(true);
    }
    expect((error as Error).message).toContain('"abc"');
  });

  it('treats empty strings as unset, trims trailing slashes, and checks pairs', () => {
    const c = loadConfig({ KIE_BASE_URL: '', PUBLIC_BASE_URL: 'https://hooks.example.com/', KIE_API_KEY: '' });
    expect(c.kieBaseUrl).toBe('https://api.kie.ai');
    expect(c.publicBaseUrl).toBe('https://hooks.example.com');
    expect(c.apiKey).toBeUndefined();
    expect(() => loadConfig({ DASHBOARD_USER: 'admin' })).toThrow(/DASHBOARD_USER \/ DASHBOARD_PASSWORD/);
    expect(() => loadConfig({ POLL_MIN_INTERVAL: '1m', POLL_MAX_INTERVAL: '10s' })).toThrow(/POLL_MIN_INTERVAL/);
    expect(() => loadConfig({ REDIS_URL: 'http://x' })).toThrow(/REDIS_URL/);
  });

  it('derives a callback secret without embedding the key, and overrides win', () => {
    const c = loadConfig({ KIE_API_KEY: 'sk-secret-value' }, { UPSCALE_PREFIX: 'p2' });
    expect(c.callbackSecret).not.toContain('sk-secret-value');
    expect(c.callbackSecret).toMatch(/^[0-9a-f]{64}$/);
    expect(c.prefix).toBe('p2');
  });
});

describe('formatDuration', () => {
  it('formats for people', () => {
    expect(formatDuration(950)).toBe('950ms');
    expect(formatDuration(12_500)).toBe('13s');
    expect(formatDuration(5_500)).toBe('5.5s');
    expect(formatDuration(200_000)).toBe('3m20s');
    expect(formatDuration(7_500_000)).toBe('2h05m');
  });
});
