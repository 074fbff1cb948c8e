import { describe, expect, it } from 'vitest';
import { formatDuration, rateLimitHeaders } from './headers.js';

describe('formatDuration', () => {
  it('writes durations as OpenAI does', () => {
    expect(formatDuration(0)).toBe('0s');
    expect(formatDuration(59)).toBe('59ms');
    expect(formatDuration(0.2)).toBe('1ms');
    expect(formatDuration(1000)).toBe('1s');
    expect(formatDuration(1200)).toBe('1.2s');
    expect(formatDuration(7660)).toBe('7.66s');
    expect(formatDuration(59_999)).toBe('59.999s');
    expect(formatDuration(360_000)).toBe('6m0s');
    expect(formatDuration(61_500)).toBe('1m1.5s');
    expect(formatDuration(3_723_500)).toBe('1h2m3.5s');
    expect(formatDuration(86_400_000)).toBe('24h0m0s');
    expect(formatDuration(-5)).toBe('0s');
  });
});

describe('rateLimitHeaders', () => {
  it('gives the six headers when both limits exist', () => {
    expect(
      rateLimitHeaders({
        requests: { limit: 60, remaining: 59, resetMs: 1000, window: 'minute' },
        tokens: { limit: 150_000, remaining: 149_984, resetMs: 6.4 },
        budget: { limitMicros: 1, remainingMicros: 1, period: 'day', resetMs: 1 },
      }),
    ).toEqual({
      'x-ratelimit-limit-requests': '60',
      'x-ratelimit-remaining-requests': '59',
      'x-ratelimit-reset-requests': '1s',
      'x-ratelimit-limit-tokens': '150000',
      'x-ratelimit-remaining-tokens': '149984',
      'x-ratelimit-reset-tokens': '7ms',
    });
  });

  it('gives only the headers of limits that exist', () => {
    expect(rateLimitHeaders({})).toEqual({});
    expect(Object.keys(rateLimitHeaders({ requests: { limit: 1000, remaining: 0, resetMs: 360_000, window: 'day' } }))).toEqual([
      'x-ratelimit-limit-requests',
      'x-ratelimit-remaining-requests',
      'x-ratelimit-reset-requests',
    ]);
    expect(rateLimitHeaders({ requests: { limit: 1000, remaining: 0, resetMs: 360_000, window: 'day' } })['x-ratelimit-reset-requests']).toBe('6m0s');
  });
});
