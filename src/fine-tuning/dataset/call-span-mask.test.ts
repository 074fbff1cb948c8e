import { describe, expect, it } from 'vitest';
import { callSpanMask } from './call-span-mask.js';

describe('callSpanMask', () => {
  const one = { call: [[10, 11]], result: [[20, 21]] };
  const two = { call: [[12, 13]], result: [[22]] };

  it('call₁ result₁ call₂ result₂: calls trained, results not', () => {
    expect(callSpanMask([10, 11, 20, 21, 12, 13, 22], [one, two])).toEqual([1, 1, 0, 0, 1, 1, 0]);
  });

  it('a call section then a result section: section syntax trained, results not', () => {
    // 5 = section prefix, 6 = between calls, 7 = section suffix, 8 = result section prefix
    expect(callSpanMask([5, 10, 11, 6, 12, 13, 7, 8, 20, 21, 22], [one, two], [[7]])).toEqual([1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0]);
  });

  it('undefined when a call cannot be found', () => {
    expect(callSpanMask([10, 11, 20, 21], [one, two])).toBeUndefined();
  });
});
