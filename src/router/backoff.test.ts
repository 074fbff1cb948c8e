import { describe, expect, it } from 'vitest';
import { backoffDelay, retryAfterMs, sleep } from './backoff.js';

describe('backoffDelay', () => {
  const options = { baseDelayMs: 200, maxDelayMs: 5000 };
  it('grows exponentially and is capped (full jitter up to the ceiling)', () => {
    expect(backoffDelay(1, options, () => 0.999999)).toBe(199);
    expect(backoffDelay(2, options, () => 0.999999)).toBe(399);
    expect(backoffDelay(3, options, () => 0.999999)).toBe(799);
    expect(backoffDelay(10, options, () => 0.999999)).toBe(4999);
    expect(backoffDelay(100, options, () => 0.5)).toBe(2500);
    expect(backoffDelay(3, options, () => 0)).toBe(0);
  });
  it('is spread over [0, ceiling) with Math.random', () => {
    const samples = Array.from({ length: 2000 }, () => backoffDelay(2, options));
    expect(Math.min(...samples)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...samples)).toBeLessThan(400);
    const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
    expect(mean).toBeGreaterThan(170);
    expect(mean).toBeLessThan(230);
  });
});

describe('retryAfterMs', () => {
  it('prefers retry-after-ms, then seconds, then an HTTP date', () => {
    expect(retryAfterMs({ 'retry-after-ms': '1500', 'retry-after': '9' })).toBe(1500);
    expect(retryAfterMs({ 'retry-after': '2' })).toBe(2000);
    expect(retryAfterMs({ 'retry-after': '0.25' })).toBe(250);
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterMs({ 'retry-after': 'Thu, 01 Jan 2026 00:00:03 GMT' }, now)).toBe(3000);
    expect(retryAfterMs({})).toBeUndefined();
    expect(retryAfterMs({ 'retry-after': 'soon' })).toBeUndefined();
    expect(retryAfterMs({ 'retry-after-ms': 'x', 'retry-after': '1' })).toBe(1000);
  });
});

describe('sleep', () => {
  it('rejects when the signal aborts', async () => {
    const controller = new AbortController();
    const pending = sleep(10_000, controller.signal);
    controller.abort(new Error('gone'));
    await expect(pending).rejects.toThrow('gone');
  });
});
