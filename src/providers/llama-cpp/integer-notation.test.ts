import { describe, expect, it } from 'vitest';
import { hasExponentInteger, mentionsIntegers } from './integer-notation.js';

describe('hasExponentInteger', () => {
  it('finds integral numbers in exponent notation outside strings', () => {
    expect(hasExponentInteger('{"n": 1e5}')).toBe(true);
    expect(hasExponentInteger('[-2.5E+3]')).toBe(true);
    expect(hasExponentInteger('{"n": 100000}')).toBe(false);
    expect(hasExponentInteger('{"x": 1.5e-3}')).toBe(false);
    expect(hasExponentInteger('{"s": "1e5", "t": "a\\"1e5"}')).toBe(false);
  });
  it('tells whether a schema asks for integers', () => {
    expect(mentionsIntegers({ type: 'object', properties: { n: { type: ['integer', 'null'] } } })).toBe(true);
    expect(mentionsIntegers({ type: 'number' })).toBe(false);
  });
});
