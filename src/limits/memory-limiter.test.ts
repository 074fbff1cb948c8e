import { describe, expect, it } from 'vitest';
import { limiterConformance, T0 } from '../../test/support/limiter-conformance.js';
import { MemoryLimiter } from './memory-limiter.js';

describe('MemoryLimiter', () => {
  limiterConformance({ create: (options) => new MemoryLimiter(options) });

  it('sweeps ended windows', async () => {
    const limiter = new MemoryLimiter({ sweepEvery: 1_000_000 });
    await limiter.reserve('a', { rpm: 1 }, { requests: 1, tokens: 0, micros: 0 }, T0);
    limiter.sweep(T0 + 60_000);
    // the old minute is gone: a reservation in it (a late clock) starts from zero
    expect((await limiter.reserve('a', { rpm: 1 }, { requests: 1, tokens: 0, micros: 0 }, T0)).ok).toBe(true);
  });

  it('treats a caller with an older clock conservatively', async () => {
    const limiter = new MemoryLimiter();
    await limiter.reserve('a', { rpm: 1 }, { requests: 1, tokens: 0, micros: 0 }, T0 + 60_000);
    expect((await limiter.reserve('a', { rpm: 1 }, { requests: 1, tokens: 0, micros: 0 }, T0 + 59_999)).ok).toBe(false);
  });
});
