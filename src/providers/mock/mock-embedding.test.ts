import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../errors/gateway-error.js';
import { embeddingRequest } from '../../openai/embedding-request.js';
import { TokenCounters } from '../../tokens/token-counter.js';
import { MOCK_EMBEDDING_DIMENSIONS, mockEmbedding, mockEmbeddingResult } from './mock-embedding.js';

const counter = await new TokenCounters().get('cl100k_base');

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  for (let index = 0; index < a.length; index++) dot += a[index]! * b[index]!;
  return dot;
}

function norm(vector: Float32Array): number {
  return Math.sqrt(cosine(vector, vector));
}

describe('mock embeddings', () => {
  it('are deterministic unit vectors of 1536 dimensions', () => {
    const vector = mockEmbedding('The quick brown fox');
    expect(vector).toHaveLength(MOCK_EMBEDDING_DIMENSIONS);
    expect(norm(vector)).toBeCloseTo(1, 5);
    expect(mockEmbedding('The quick brown fox')).toEqual(vector);
  });

  it('bring similar texts closer than unrelated ones', () => {
    const query = mockEmbedding('How do I reset my password?');
    const similar = mockEmbedding('how can I reset my password');
    const unrelated = mockEmbedding('Tomatoes grow best in full sun.');
    expect(cosine(query, similar)).toBeGreaterThan(0.6);
    expect(cosine(query, similar)).toBeGreaterThan(cosine(query, unrelated) + 0.3);
  });

  it('are never zero, even for a single character', () => {
    expect(norm(mockEmbedding('a', 4))).toBeCloseTo(1, 5);
  });

  it('follow dimensions, count usage with the tokenizer and accept token ids', () => {
    const tokens = counter.encode('hello world');
    const result = mockEmbeddingResult(embeddingRequest.parse({ model: 'm', input: [tokens, tokens], dimensions: 64 }), counter);
    expect(result.embeddings.map((vector) => vector.length)).toEqual([64, 64]);
    expect(result.embeddings[0]).toEqual(mockEmbedding('hello world', 64));
    expect(result.usage).toEqual({ prompt_tokens: 2 * tokens.length, total_tokens: 2 * tokens.length });
    const text = mockEmbeddingResult(embeddingRequest.parse({ model: 'm', input: 'hello world' }), counter);
    expect(text.usage.prompt_tokens).toBe(tokens.length);
  });

  it('refuse token ids the encoding does not have', () => {
    expect(() => mockEmbeddingResult(embeddingRequest.parse({ model: 'm', input: [[1], [999_999_999]] }), counter)).toThrow(GatewayError);
  });
});
