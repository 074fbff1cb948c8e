/**
 * The behaviour every Limiter must have, run against MemoryLimiter and RedisLimiter
 * (src/limits/memory-limiter.test.ts, redis-limiter.test.ts). Not a test file itself.
 */
import { describe, expect, it } from 'vitest';
import type { InitialSpend, Limiter, ReserveResult } from '../../src/limits/limiter.js';

export interface LimiterFactory {
  /** A fresh limiter (its own namespace); several calls share counters when `shared` is true. */
  create(options?: { initialSpend?: InitialSpend }): Limiter | Promise<Limiter>;
}

/** Monday 2030-01-07 12:00:00 UTC. */
export const T0 = Date.UTC(2030, 0, 7, 12, 0, 0);
const MINUTE = 60_000;
const DAY = 86_400_000;

let counter = 0;
const subject = () => `key_test${++counter}_${Math.random().toString(36).slice(2, 8)}`;
const one = (tokens = 0, micros = 0) => ({ requests: 1, tokens, micros });

function admitted(results: ReserveResult[]): number {
  return results.filter((result) => result.ok).length;
}

export function limiterConformance(factory: LimiterFactory): void {
  describe('exactness under concurrency', () => {
    it('admits exactly rpm of 200 concurrent requests', async () => {
      const limiter = await factory.create();
      const key = subject();
      const results = await Promise.all(Array.from({ length: 200 }, () => limiter.reserve(key, { rpm: 50 }, one(), T0 + 1500)));
      expect(admitted(results)).toBe(50);
      for (const result of results) {
        if (result.ok) continue;
        expect(result.reason).toBe('requests');
        expect(result.window).toBe('minute');
        expect(result.limit).toBe(50);
        expect(result.used).toBe(50);
        expect(result.retryAfterMs).toBe(MINUTE - 1500);
        expect(result.tooLarge).toBe(false);
        expect(result.state.requests).toEqual({ limit: 50, remaining: 0, resetMs: MINUTE - 1500, window: 'minute' });
      }
      const remaining = results.filter((r) => r.ok).map((r) => r.state.requests!.remaining).sort((a, b) => a - b);
      expect(remaining).toEqual(Array.from({ length: 50 }, (_, index) => index));
    });

    it('never passes tpm with requests of varied sizes', async () => {
      const limiter = await factory.create();
      const key = subject();
      const sizes = Array.from({ length: 300 }, (_, index) => 1 + ((index * 7919) % 500));
      const results = await Promise.all(sizes.map((size) => limiter.reserve(key, { tpm: 10_000 }, one(size), T0)));
      const used = sizes.reduce((sum, size, index) => sum + (results[index]!.ok ? size : 0), 0);
      expect(used).toBeLessThanOrEqual(10_000);
      sizes.forEach((size, index) => {
        const result = results[index]!;
        if (!result.ok) {
          expect(result.reason).toBe('tokens');
          expect(used + size).toBeGreaterThan(10_000);
        }
      });
      const probe = await limiter.reserve(key, { tpm: 10_000 }, one(0), T0);
      expect(probe.state.tokens?.remaining).toBe(10_000 - used);
    });

    it('checks all counters together: a request refused by one limit counts in none', async () => {
      const limiter = await factory.create();
      const key = subject();
      const limits = { rpm: 100, rpd: 1000, tpm: 1000 };
      const results = await Promise.all(Array.from({ length: 100 }, () => limiter.reserve(key, limits, one(100), T0)));
      expect(admitted(results)).toBe(10);
      const probe = await limiter.reserve(key, limits, one(0), T0);
      expect(probe.ok).toBe(true);
      expect(probe.state.requests).toMatchObject({ limit: 100, remaining: 100 - 11, window: 'minute' });
      expect(probe.state.tokens).toMatchObject({ limit: 1000, remaining: 0 });
    });

    it('never passes a budget under concurrency', async () => {
      const limiter = await factory.create();
      const key = subject();
      const limits = { budgetMicros: 1_000_000, budgetPeriod: 'month' as const };
      const results = await Promise.all(Array.from({ length: 100 }, () => limiter.reserve(key, limits, one(0, 30_000), T0)));
      expect(admitted(results)).toBe(33);
      const refused = results.find((result) => !result.ok);
      expect(refused).toMatchObject({ ok: false, reason: 'budget', window: 'month', limit: 1_000_000, used: 990_000, requested: 30_000 });
      expect(refused!.state.budget).toEqual({ limitMicros: 1_000_000, remainingMicros: 10_000, period: 'month', resetMs: Date.UTC(2030, 1, 1) - T0 });
    });
  });

  describe('settle and release', () => {
    it('settling with less than reserved lets more requests in', async () => {
      const limiter = await factory.create();
      const key = subject();
      const limits = { tpm: 10_000, budgetMicros: 10_000, budgetPeriod: 'day' as const };
      const first = await Promise.all([1, 2, 3, 4].map(() => limiter.reserve(key, limits, one(1000, 3000), T0)));
      expect(first.map((result) => result.ok)).toEqual([true, true, true, false]);
      expect(first[3]).toMatchObject({ reason: 'budget', used: 9000, retryAfterMs: DAY / 2 });
      for (const result of first) if (result.ok) await limiter.settle(result.reservation, { tokens: 200, micros: 1000 });
      // 3000 spent, 7000 left: two more worst cases of 3000 fit, not three
      const second = await Promise.all([1, 2, 3].map(() => limiter.reserve(key, limits, one(1000, 3000), T0 + 1)));
      expect(admitted(second)).toBe(2);
      const probe = await limiter.reserve(key, limits, one(0, 0), T0 + 2);
      expect(probe.state.budget?.remainingMicros).toBe(1000);
      expect(probe.state.tokens?.remaining).toBe(10_000 - 3 * 200 - 2 * 1000);
    });

    it('settling with more than reserved counts it all, past the limit', async () => {
      const limiter = await factory.create();
      const key = subject();
      const result = await limiter.reserve(key, { tpm: 1000 }, one(500), T0);
      if (!result.ok) throw new Error('refused');
      await limiter.settle(result.reservation, { tokens: 1200, micros: 0 });
      const next = await limiter.reserve(key, { tpm: 1000 }, one(1), T0);
      expect(next).toMatchObject({ ok: false, reason: 'tokens', used: 1200, retryAfterMs: MINUTE });
      expect(next.state.tokens?.remaining).toBe(0);
    });

    it('never goes below zero, and acts once per reservation', async () => {
      const limiter = await factory.create();
      const key = subject();
      const a = await limiter.reserve(key, { tpm: 1000 }, one(100), T0);
      if (!a.ok) throw new Error('refused');
      await limiter.settle(a.reservation, { tokens: 0, micros: 0 });
      await limiter.settle(a.reservation, { tokens: 0, micros: 0 });
      await limiter.release(a.reservation);
      const b = await limiter.reserve(key, { tpm: 1000 }, one(1000), T0);
      expect(b.ok).toBe(true);
      expect(b.state.tokens?.remaining).toBe(0);
    });

    it('release returns tokens and cost but the request still counts', async () => {
      const limiter = await factory.create();
      const key = subject();
      const limits = { rpm: 2, tpm: 100, budgetMicros: 100, budgetPeriod: 'total' as const };
      const a = await limiter.reserve(key, limits, one(100, 100), T0);
      if (!a.ok) throw new Error('refused');
      await limiter.release(a.reservation);
      const b = await limiter.reserve(key, limits, one(100, 100), T0);
      expect(b.ok).toBe(true);
      expect(b.state.requests?.remaining).toBe(0);
      const c = await limiter.reserve(key, limits, one(0, 0), T0);
      expect(c).toMatchObject({ ok: false, reason: 'requests' });
    });

    it('settles in the window the reservation was made in', async () => {
      const limiter = await factory.create();
      const key = subject();
      const a = await limiter.reserve(key, { tpm: 1000 }, one(1000), T0 + MINUTE - 10);
      if (!a.ok) throw new Error('refused');
      const b = await limiter.reserve(key, { tpm: 1000 }, one(1000), T0 + MINUTE);
      expect(b.ok).toBe(true);
      // settling `a` late must not give tokens back in the new minute
      await limiter.settle(a.reservation, { tokens: 0, micros: 0 });
      const c = await limiter.reserve(key, { tpm: 1000 }, one(1), T0 + MINUTE + 5);
      expect(c).toMatchObject({ ok: false, reason: 'tokens', used: 1000 });
    });
  });

  describe('windows', () => {
    it('rolls the minute over at the UTC minute, with the right retry-after', async () => {
      const limiter = await factory.create();
      const key = subject();
      const limits = { rpm: 2, tpm: 50 };
      expect((await limiter.reserve(key, limits, one(10), T0 + 58_800)).ok).toBe(true);
      expect((await limiter.reserve(key, limits, one(10), T0 + 58_800)).ok).toBe(true);
      const refused = await limiter.reserve(key, limits, one(10), T0 + 58_800);
      expect(refused).toMatchObject({ ok: false, reason: 'requests', retryAfterMs: 1200 });
      const next = await limiter.reserve(key, limits, one(10), T0 + MINUTE);
      expect(next.ok).toBe(true);
      expect(next.state.requests).toEqual({ limit: 2, remaining: 1, resetMs: MINUTE, window: 'minute' });
      expect(next.state.tokens).toEqual({ limit: 50, remaining: 40, resetMs: MINUTE });
    });

    it('counts rpd in the UTC day, and reports it when there is no rpm', async () => {
      const limiter = await factory.create();
      const key = subject();
      expect((await limiter.reserve(key, { rpd: 1 }, one(), T0)).ok).toBe(true);
      const refused = await limiter.reserve(key, { rpd: 1 }, one(), T0 + 5 * MINUTE);
      expect(refused).toMatchObject({ ok: false, reason: 'requests', window: 'day', retryAfterMs: DAY / 2 - 5 * MINUTE });
      expect(refused.state.requests).toMatchObject({ window: 'day', limit: 1, remaining: 0 });
      expect((await limiter.reserve(key, { rpd: 1 }, one(), T0 + DAY / 2)).ok).toBe(true);
    });

    it('waits for the window that resets last when several refuse', async () => {
      const limiter = await factory.create();
      const key = subject();
      const limits = { rpm: 1, rpd: 1 };
      await limiter.reserve(key, limits, one(), T0);
      const refused = await limiter.reserve(key, limits, one(), T0);
      expect(refused).toMatchObject({ ok: false, window: 'day', retryAfterMs: DAY / 2 });
    });

    it('budget periods: ISO week from Monday, calendar month, total never resets', async () => {
      const limiter = await factory.create();
      const week = subject();
      const sunday = Date.UTC(2030, 0, 13, 23, 0, 0);
      await limiter.reserve(week, { budgetMicros: 10, budgetPeriod: 'week' }, one(0, 10), T0);
      expect(await limiter.reserve(week, { budgetMicros: 10, budgetPeriod: 'week' }, one(0, 1), sunday)).toMatchObject({ ok: false, retryAfterMs: 3_600_000 });
      expect((await limiter.reserve(week, { budgetMicros: 10, budgetPeriod: 'week' }, one(0, 1), sunday + 3_600_000)).ok).toBe(true);

      const month = subject();
      await limiter.reserve(month, { budgetMicros: 10, budgetPeriod: 'month' }, one(0, 10), Date.UTC(2030, 1, 1));
      expect((await limiter.reserve(month, { budgetMicros: 10, budgetPeriod: 'month' }, one(0, 1), Date.UTC(2030, 1, 28, 23, 59))).ok).toBe(false);
      expect((await limiter.reserve(month, { budgetMicros: 10, budgetPeriod: 'month' }, one(0, 1), Date.UTC(2030, 2, 1))).ok).toBe(true);

      const total = subject();
      await limiter.reserve(total, { budgetMicros: 10, budgetPeriod: 'total' }, one(0, 10), T0);
      const refused = await limiter.reserve(total, { budgetMicros: 10, budgetPeriod: 'total' }, one(0, 1), T0 + 400 * DAY);
      expect(refused).toMatchObject({ ok: false, reason: 'budget', window: 'total', retryAfterMs: null, tooLarge: false });
      expect(refused.state.budget?.resetMs).toBeNull();
    });
  });

  describe('requests that can never pass', () => {
    it('refuses tokens over tpm and cost over the budget at once, without a retry time', async () => {
      const limiter = await factory.create();
      const key = subject();
      const tokens = await limiter.reserve(key, { rpm: 10, tpm: 100 }, one(101), T0);
      expect(tokens).toMatchObject({ ok: false, reason: 'tokens', tooLarge: true, retryAfterMs: null, limit: 100, requested: 101 });
      const budget = await limiter.reserve(key, { rpm: 10, budgetMicros: 100, budgetPeriod: 'day' }, one(0, 101), T0);
      expect(budget).toMatchObject({ ok: false, reason: 'budget', tooLarge: true, retryAfterMs: null });
      const zero = await limiter.reserve(key, { rpm: 0 }, one(), T0);
      expect(zero).toMatchObject({ ok: false, reason: 'requests', tooLarge: true, retryAfterMs: null });
      // nothing was counted
      expect((await limiter.reserve(key, { rpm: 10 }, one(), T0)).state.requests?.remaining).toBe(9);
    });

    it('prefers the reason waiting cannot fix', async () => {
      const limiter = await factory.create();
      const key = subject();
      await limiter.reserve(key, { rpm: 1 }, one(), T0);
      const refused = await limiter.reserve(key, { rpm: 1, tpm: 10 }, one(11), T0);
      expect(refused).toMatchObject({ ok: false, reason: 'tokens', tooLarge: true, retryAfterMs: null });
    });
  });

  describe('budget seeding', () => {
    it('asks initialSpend once per subject and period, and counts it', async () => {
      const calls: [string, number][] = [];
      const limiter = await factory.create({
        initialSpend: async (who, periodStart) => {
          calls.push([who, periodStart]);
          await new Promise((resolve) => setTimeout(resolve, 20));
          return 900;
        },
      });
      const key = subject();
      const limits = { budgetMicros: 1000, budgetPeriod: 'day' as const };
      const results = await Promise.all(Array.from({ length: 20 }, () => limiter.reserve(key, limits, one(0, 50), T0)));
      expect(admitted(results)).toBe(2);
      expect(calls).toEqual([[key, Date.UTC(2030, 0, 7)]]);
      // the next day is a new period, seeded again
      await limiter.reserve(key, limits, one(0, 50), T0 + DAY);
      expect(calls).toHaveLength(2);
      expect(calls[1]).toEqual([key, Date.UTC(2030, 0, 8)]);
    });

    it('does not ask for subjects without a budget', async () => {
      let asked = 0;
      const limiter = await factory.create({ initialSpend: async () => (asked++, 0) });
      await limiter.reserve(subject(), { rpm: 5 }, one(), T0);
      expect(asked).toBe(0);
    });
  });

  it('keeps subjects apart and keeps no counters without limits', async () => {
    const limiter = await factory.create();
    const [a, b] = [subject(), subject()];
    expect((await limiter.reserve(a, { rpm: 1 }, one(), T0)).ok).toBe(true);
    expect((await limiter.reserve(b, { rpm: 1 }, one(), T0)).ok).toBe(true);
    const free = await limiter.reserve(a, {}, one(1_000_000, 1_000_000), T0);
    expect(free).toMatchObject({ ok: true, state: {} });
  });

  it('rejects malformed input', async () => {
    const limiter = await factory.create();
    await expect(limiter.reserve(subject(), { rpm: 1.5 }, one(), T0)).rejects.toThrow(RangeError);
    await expect(limiter.reserve(subject(), { budgetMicros: 5 }, one(), T0)).rejects.toThrow(RangeError);
    await expect(limiter.reserve(subject(), {}, one(-1), T0)).rejects.toThrow(RangeError);
  });
}
