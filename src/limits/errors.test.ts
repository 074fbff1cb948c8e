import { describe, expect, it } from 'vitest';
import { refusalError, formatUsd } from './errors.js';
import { MemoryLimiter } from './memory-limiter.js';
import type { LimitSpec, Refused, ReserveCost } from './limiter.js';

const T0 = Date.UTC(2030, 0, 7, 12, 0, 0);

async function refuse(limits: LimitSpec, fill: ReserveCost, cost: ReserveCost, now: number): Promise<Refused> {
  const limiter = new MemoryLimiter();
  await limiter.reserve('k', limits, fill, now);
  const result = await limiter.reserve('k', limits, cost, now);
  if (result.ok) throw new Error('admitted');
  return result;
}

describe('refusalError', () => {
  it('rate_limit_exceeded for requests, worded like OpenAI, with retry-after', async () => {
    const refusal = await refuse({ rpm: 1, tpm: 100 }, { requests: 1, tokens: 10, micros: 0 }, { requests: 1, tokens: 10, micros: 0 }, T0 + 58_800);
    const error = refusalError(refusal, { subjectLabel: 'key_abc' });
    expect(error.status).toBe(429);
    expect(error.code).toBe('rate_limit_exceeded');
    expect(error.type).toBe('requests');
    expect(error.message).toBe('Rate limit reached for requests per minute (RPM) on key key_abc: Limit 1, Used 1, Requested 1. Please try again in 1.2s.');
    expect(error.headers).toEqual({
      'retry-after': '2',
      'retry-after-ms': '1200',
      'x-ratelimit-limit-requests': '1',
      'x-ratelimit-remaining-requests': '0',
      'x-ratelimit-reset-requests': '1.2s',
      'x-ratelimit-limit-tokens': '100',
      'x-ratelimit-remaining-tokens': '90',
      'x-ratelimit-reset-tokens': '1.2s',
    });
    expect(error.toBody().error).toMatchObject({ type: 'requests', code: 'rate_limit_exceeded', param: null });
  });

  it('says RPD for the daily limit', async () => {
    const refusal = await refuse({ rpd: 5 }, { requests: 5, tokens: 0, micros: 0 }, { requests: 1, tokens: 0, micros: 0 }, T0);
    expect(refusalError(refusal, { subjectLabel: 'k' }).message).toContain('requests per day (RPD) on key k: Limit 5, Used 5, Requested 1. Please try again in 12h0m0s.');
  });

  it('tokens over the window', async () => {
    const refusal = await refuse({ tpm: 1000 }, { requests: 1, tokens: 800, micros: 0 }, { requests: 1, tokens: 400, micros: 0 }, T0 + 30_000);
    const error = refusalError(refusal, { subjectLabel: 'k' });
    expect(error.type).toBe('tokens');
    expect(error.message).toBe('Rate limit reached for tokens per minute (TPM) on key k: Limit 1000, Used 800, Requested 400. Please try again in 30s.');
    expect(error.headers['retry-after']).toBe('30');
  });

  it('a request larger than tpm: no retry-after, x-should-retry false', async () => {
    const refusal = await refuse({ tpm: 1000 }, { requests: 1, tokens: 0, micros: 0 }, { requests: 1, tokens: 5000, micros: 0 }, T0);
    const error = refusalError(refusal, { subjectLabel: 'k' });
    expect(error.code).toBe('rate_limit_exceeded');
    expect(error.message).toBe('Request too large for tokens per minute (TPM) on key k: Limit 1000, Requested 5000. The input or output tokens must be reduced in order to run successfully.');
    expect(error.headers['retry-after']).toBeUndefined();
    expect(error.headers['x-should-retry']).toBe('false');
  });

  it('insufficient_quota for a used-up budget, saying when it resets', async () => {
    const refusal = await refuse(
      { budgetMicros: 10_000_000, budgetPeriod: 'month' },
      { requests: 1, tokens: 0, micros: 9_870_000 },
      { requests: 1, tokens: 0, micros: 500_000 },
      T0,
    );
    const error = refusalError(refusal, { subjectLabel: 'key_abc', now: T0 });
    expect(error.status).toBe(429);
    expect(error.type).toBe('insufficient_quota');
    expect(error.code).toBe('insufficient_quota');
    expect(error.message).toBe(
      'You exceeded your budget of $10.00 per month on key key_abc: Used $9.87, Requested up to $0.50. The budget resets at 2030-02-01T00:00:00.000Z.',
    );
    expect(error.headers['x-should-retry']).toBe('false');
    expect(Number(error.headers['retry-after'])).toBe((Date.UTC(2030, 1, 1) - T0) / 1000);
  });

  it('a total budget, and a request costing more than the whole budget', async () => {
    const total = await refuse({ budgetMicros: 1_000_000, budgetPeriod: 'total' }, { requests: 1, tokens: 0, micros: 1_000_000 }, { requests: 1, tokens: 0, micros: 1 }, T0);
    const totalError = refusalError(total, { subjectLabel: 'k' });
    expect(totalError.message).toBe('You exceeded your total budget of $1.00 on key k: Used $1.00, Requested up to $0.000001.');
    expect(totalError.headers['retry-after']).toBeUndefined();
    const large = await refuse({ budgetMicros: 500_000, budgetPeriod: 'day' }, { requests: 1, tokens: 0, micros: 0 }, { requests: 1, tokens: 0, micros: 620_000 }, T0);
    const largeError = refusalError(large, { subjectLabel: 'k' });
    expect(largeError.message).toBe('This request could cost up to $0.62, more than your budget of $0.50 per day on key k. Reduce max_tokens or the prompt.');
    expect(largeError.headers['retry-after']).toBeUndefined();
  });

  it('formats USD', () => {
    expect(formatUsd(0)).toBe('$0.00');
    expect(formatUsd(1_500_000)).toBe('$1.50');
    expect(formatUsd(425)).toBe('$0.000425');
    expect(formatUsd(123_456_789)).toBe('$123.456789');
  });
});
