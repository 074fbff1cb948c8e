import { describe, expect, it } from 'vitest';
import { BUILT_IN_PRICES, PriceTable } from './price-table.js';

describe('PriceTable', () => {
  const table = new PriceTable();

  it('prices the built-in names as the OpenAI models behind them', () => {
    expect(table.priceOf('gpt-4-2026')).toEqual({ input: 2, output: 8, cachedInput: 0.5 });
    expect(table.priceOf('gpt-4-vision')).toEqual(table.priceOf('gpt-4.1'));
    expect(table.priceOf('gpt-4-32k')).toEqual(table.priceOf('gpt-4.1-mini'));
    expect(table.priceOf('gpt-4-turbo')).toEqual({ input: 10, output: 30, cachedInput: 10 });
    for (const name of ['gpt-4-2026', 'gpt-4-turbo', 'gpt-4-vision', 'gpt-4-32k', 'gpt-4.1', 'gpt-4.1-mini']) {
      expect(BUILT_IN_PRICES[name], name).toBeDefined();
    }
  });

  it('computes cost in micro-USD: USD per 1M tokens is micro-USD per token', () => {
    // 1000 prompt × $2/M + 500 completion × $8/M = 2000 + 4000 micro-USD
    expect(table.costMicros('gpt-4.1', { promptTokens: 1000, completionTokens: 500 })).toBe(6000);
    expect(table.costMicros('gpt-4-turbo', { promptTokens: 1, completionTokens: 1 })).toBe(40);
  });

  it('charges cached prompt tokens at the cached price', () => {
    // 1000 prompt of which 800 cached: 200 × 2 + 800 × 0.5 + 0 = 800
    expect(table.costMicros('gpt-4.1', { promptTokens: 1000, completionTokens: 0, cachedTokens: 800 })).toBe(800);
    // cached beyond prompt is capped
    expect(table.costMicros('gpt-4.1', { promptTokens: 10, completionTokens: 0, cachedTokens: 50 })).toBe(5);
  });

  it('rounds up to a whole micro-USD, exactly (no floating-point drift)', () => {
    // 3 × $0.40/M = 1.2 micro-USD → 2; in floating point 0.4 * 3 = 1.2000000000000002 (still 2), and
    // 10 × $0.1/M = 1 exactly (floating point: 1.0000000000000002 would wrongly give 2)
    expect(table.costMicros('gpt-4.1-mini', { promptTokens: 3, completionTokens: 0 })).toBe(2);
    expect(table.costMicros('gpt-4.1-nano', { promptTokens: 10, completionTokens: 0 })).toBe(1);
    expect(table.costMicros('gpt-4.1-nano', { promptTokens: 0, completionTokens: 0, cachedTokens: 0 })).toBe(0);
    // 40 cached × $0.025/M = 1 micro-USD exactly
    expect(table.costMicros('gpt-4.1-nano', { promptTokens: 40, completionTokens: 0, cachedTokens: 40 })).toBe(1);
    expect(table.costMicros('gpt-4.1-nano', { promptTokens: 41, completionTokens: 0, cachedTokens: 41 })).toBe(2);
  });

  it('gives the worst case: all prompt tokens uncached plus max_tokens of output', () => {
    expect(table.worstCaseMicros('gpt-4-2026', 1000, 4096)).toBe(1000 * 2 + 4096 * 8);
  });

  it('merges config prices over the built-in ones; cached_input defaults to input', () => {
    const custom = new PriceTable({ 'gpt-4-turbo': { input: 0, output: 0 }, 'local-llama': { input: 0.3, output: 0.6 } });
    expect(custom.costMicros('gpt-4-turbo', { promptTokens: 1000, completionTokens: 1000 })).toBe(0);
    expect(custom.priceOf('local-llama')).toEqual({ input: 0.3, output: 0.6, cachedInput: 0.3 });
    expect(custom.costMicros('local-llama', { promptTokens: 1000, completionTokens: 1000, cachedTokens: 500 })).toBe(900);
    expect(custom.priceOf('gpt-4-2026')).toEqual(table.priceOf('gpt-4-2026'));
  });

  it('has a null cost for unknown models', () => {
    expect(table.priceOf('llama-3')).toBeNull();
    expect(table.costMicros('llama-3', { promptTokens: 10, completionTokens: 10 })).toBeNull();
    expect(table.worstCaseMicros('llama-3', 10, 10)).toBeNull();
  });

  it('rejects non-integer token counts', () => {
    expect(() => table.costMicros('gpt-4.1', { promptTokens: 1.5, completionTokens: 0 })).toThrow(RangeError);
  });
});
