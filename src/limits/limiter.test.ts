import { describe, expect, it } from 'vitest';
import { limitsFromSettings } from './limiter.js';

describe('limitsFromSettings', () => {
  it('turns key settings into limits, USD into micro-USD', () => {
    expect(limitsFromSettings({ limits: {}, budget: null })).toEqual({});
    expect(limitsFromSettings({ limits: { rpm: 60, tpm: 1000 }, budget: { usd: 1.005, period: 'week' } })).toEqual({
      rpm: 60,
      tpm: 1000,
      budgetMicros: 1_005_000,
      budgetPeriod: 'week',
    });
    expect(limitsFromSettings({ limits: { rpd: 0 }, budget: { usd: 0.29, period: 'total' } })).toEqual({ rpd: 0, budgetMicros: 290_000, budgetPeriod: 'total' });
  });
});
