import { describe, expect, it } from 'vitest';
import { pickByWeight, planTargets, updateEwma, type PlannedTarget } from './strategies.js';

interface T extends PlannedTarget {
  id: string;
}
const target = (id: string, weight = 1, latencyEwma?: number, available = true): T => ({ id, weight, latencyEwma, available });

describe('planTargets', () => {
  it('fallback keeps the configured order, open circuits last', () => {
    const plan = planTargets('fallback', [target('a', 1, undefined, false), target('b'), target('c')]);
    expect(plan.map((t) => t.id)).toEqual(['b', 'c', 'a']);
  });

  it('weighted draws the first target in proportion to the weights', () => {
    const targets = [target('a', 3), target('b', 1), target('c', 0)];
    const counts: Record<string, number> = { a: 0, b: 0, c: 0 };
    for (let i = 0; i < 8000; i++) counts[planTargets('weighted', targets)[0]!.id]!++;
    expect(counts['c']).toBe(0);
    expect(counts['a']! / 8000).toBeGreaterThan(0.7);
    expect(counts['a']! / 8000).toBeLessThan(0.8);
    // the others follow as fallbacks
    expect(planTargets('weighted', targets, () => 0.9).map((t) => t.id)).toEqual(['b', 'a', 'c']);
  });

  it('weighted skips unhealthy targets for the draw', () => {
    const plan = planTargets('weighted', [target('a', 100, undefined, false), target('b', 1)], () => 0);
    expect(plan.map((t) => t.id)).toEqual(['b', 'a']);
  });

  it('latency explores unmeasured targets first, then prefers the fastest', () => {
    expect(planTargets('latency', [target('slow', 1, 2), target('new'), target('fast', 1, 0.1)]).map((t) => t.id)).toEqual(['new', 'fast', 'slow']);
    expect(planTargets('latency', [target('slow', 1, 2), target('fast', 1, 0.1, false), target('mid', 1, 1)]).map((t) => t.id)).toEqual([
      'mid',
      'slow',
      'fast',
    ]);
  });
});

describe('pickByWeight / updateEwma', () => {
  it('returns undefined when everything weighs 0', () => {
    expect(pickByWeight([target('a', 0)])).toBeUndefined();
  });
  it('moves the average towards new samples', () => {
    expect(updateEwma(undefined, 1)).toBe(1);
    expect(updateEwma(1, 2)).toBeCloseTo(1.3);
  });
});
