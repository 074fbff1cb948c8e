import { describe, expect, it } from 'vitest';
import { MemoryLimiter } from './memory-limiter.js';
import { reserveWithin } from './wait.js';

const T0 = Date.UTC(2030, 0, 7, 12, 0, 0);
const one = { requests: 1, tokens: 0, micros: 0 };

/** A fake clock whose sleep advances time. */
function fakeTime(start: number) {
  const clock = { now: start, sleeps: [] as number[] };
  return {
    clock,
    options: {
      clock: () => clock.now,
      sleep: async (ms: number, signal?: AbortSignal) => {
        signal?.throwIfAborted();
        clock.sleeps.push(ms);
        clock.now += ms;
      },
    },
  };
}

describe('reserveWithin', () => {
  it('waits for the window to reset when that is before the deadline', async () => {
    const limiter = new MemoryLimiter();
    const { clock, options } = fakeTime(T0 + 59_000);
    await limiter.reserve('k', { rpm: 1 }, one, clock.now);
    const result = await reserveWithin(limiter, 'k', { rpm: 1 }, one, { ...options, maxWaitMs: 2000, jitterMs: 0 });
    expect(result.ok).toBe(true);
    expect(clock.sleeps).toEqual([1000]);
  });

  it('adds jitter within jitterMs', async () => {
    const limiter = new MemoryLimiter();
    const { clock, options } = fakeTime(T0 + 59_000);
    await limiter.reserve('k', { rpm: 1 }, one, clock.now);
    await reserveWithin(limiter, 'k', { rpm: 1 }, one, { ...options, maxWaitMs: 5000, jitterMs: 100 });
    expect(clock.sleeps[0]).toBeGreaterThanOrEqual(1000);
    expect(clock.sleeps[0]).toBeLessThanOrEqual(1100);
  });

  it('refuses at once when the reset is after the deadline', async () => {
    const limiter = new MemoryLimiter();
    const { clock, options } = fakeTime(T0 + 10_000);
    await limiter.reserve('k', { rpm: 1 }, one, clock.now);
    const result = await reserveWithin(limiter, 'k', { rpm: 1 }, one, { ...options, maxWaitMs: 5000 });
    expect(result).toMatchObject({ ok: false, reason: 'requests', retryAfterMs: 50_000 });
    expect(clock.sleeps).toEqual([]);
  });

  it('refuses at once when waiting cannot help', async () => {
    const limiter = new MemoryLimiter();
    const { clock, options } = fakeTime(T0);
    const result = await reserveWithin(limiter, 'k', { tpm: 10 }, { requests: 1, tokens: 11, micros: 0 }, { ...options, maxWaitMs: 120_000 });
    expect(result).toMatchObject({ ok: false, tooLarge: true });
    expect(clock.sleeps).toEqual([]);
  });

  it('retries until the deadline while others keep taking the window', async () => {
    const limiter = new MemoryLimiter();
    const { clock, options } = fakeTime(T0 + 59_000);
    await limiter.reserve('k', { rpm: 1 }, one, clock.now);
    const sleep = async (ms: number, signal?: AbortSignal) => {
      await options.sleep(ms, signal);
      await limiter.reserve('k', { rpm: 1 }, one, clock.now); // someone else gets there first
    };
    const result = await reserveWithin(limiter, 'k', { rpm: 1 }, one, { ...options, sleep, maxWaitMs: 100_000, jitterMs: 0 });
    expect(result).toMatchObject({ ok: false, retryAfterMs: 60_000 });
    expect(clock.sleeps).toEqual([1000, 60_000]);
  });

  it('is abortable, with the real timer', async () => {
    const limiter = new MemoryLimiter();
    const now = Date.now();
    const minuteEnd = Math.floor(now / 60_000) * 60_000 + 60_000;
    if (minuteEnd - now < 300) await new Promise((resolve) => setTimeout(resolve, minuteEnd - now + 10));
    await limiter.reserve('k', { rpm: 1 }, one);
    const controller = new AbortController();
    const pending = reserveWithin(limiter, 'k', { rpm: 1 }, one, { maxWaitMs: 120_000, signal: controller.signal });
    setTimeout(() => controller.abort(new Error('client gone')), 20);
    await expect(pending).rejects.toThrow('client gone');
  });

  it('with maxWaitMs 0 reserves once', async () => {
    const limiter = new MemoryLimiter();
    const { clock, options } = fakeTime(T0 + 59_990);
    await limiter.reserve('k', { rpm: 1 }, one, clock.now);
    const result = await reserveWithin(limiter, 'k', { rpm: 1 }, one, { ...options, maxWaitMs: 0 });
    expect(result.ok).toBe(false);
    expect(clock.sleeps).toEqual([]);
  });
});
