import { describe, expect, it } from 'vitest';
import { fitDimensions, fromBase64Embedding, normalizeInPlace, toBase64Embedding } from './embedding-encoding.js';

describe('base64 embeddings', () => {
  it('are the little-endian float32 bytes, as OpenAI sends them', () => {
    // 1.0 = 00 00 80 3f, -2.0 = 00 00 00 c0, 0.5 = 00 00 00 3f
    expect(toBase64Embedding([1, -2, 0.5])).toBe(Buffer.from([0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0, 0, 0, 0, 0x3f]).toString('base64'));
  });

  it('round-trip exactly for float32 values', () => {
    const vector = Float32Array.from({ length: 1536 }, (_, index) => Math.sin(index) / 7);
    expect(fromBase64Embedding(toBase64Embedding(vector))).toEqual(vector);
  });

  it('decode as the openai SDK does (Float32Array over the bytes)', () => {
    const vector = [0.25, -0.125, 3.5];
    const bytes = Buffer.from(toBase64Embedding(vector), 'base64');
    expect(Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4))).toEqual(vector);
  });

  it('refuse a byte count that is not a multiple of 4', () => {
    expect(fromBase64Embedding(Buffer.from([1, 2, 3]).toString('base64'))).toBeUndefined();
  });
});

describe('dimensions', () => {
  it('truncate a longer vector and scale it back to unit length', () => {
    const vector = normalizeInPlace(Float32Array.from([3, 4, 12]));
    const fitted = fitDimensions(vector, 2)!;
    expect(fitted).toHaveLength(2);
    expect(fitted[0]).toBeCloseTo(0.6, 6);
    expect(fitted[1]).toBeCloseTo(0.8, 6);
  });

  it('leave a vector of that length (or no dimensions) as it is', () => {
    const vector = Float32Array.from([0.6, 0.8]);
    expect(fitDimensions(vector, 2)).toBe(vector);
    expect(fitDimensions(vector, undefined)).toBe(vector);
  });

  it('cannot grow a vector', () => {
    expect(fitDimensions(Float32Array.from([1, 0]), 3)).toBeUndefined();
  });
});
