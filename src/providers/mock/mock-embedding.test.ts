import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../errors/gateway-error.js';
import { embeddingRequest } from '../../openai/embedding-request.js';
import { TokenCounters } from '../../tokens/token-counter.js';
import { MOCK_EMBEDDING_DIMENSIONS, mockEmbedding, mockEmbeddingAsync, mockEmbeddingResult } from './mock-embedding.js';

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

  it('are the same sync and async, for long texts with surrogate pairs and whitespace runs', async () => {
    const text = 'Héllo  🙂 wörld\t\nof 日本語 '.repeat(5000);
    expect(await mockEmbeddingAsync(text, 256)).toEqual(mockEmbedding(text, 256));
    // The hashed trigrams are those of the code points of " text " (the original definition).
    const reference = new Float32Array(256);
    const characters = [...` ${'a 🙂b  C'.toLowerCase().replace(/\s+/g, ' ').trim()} `];
    const fnv = (value: string, seed = 0x811c9dc5) => {
      let hash = seed >>> 0;
      for (let index = 0; index < value.length; index++) hash = Math.imul(hash ^ value.charCodeAt(index), 0x01000193) >>> 0;
      return hash;
    };
    for (let index = 0; index + 3 <= characters.length; index++) {
      const trigram = characters.slice(index, index + 3).join('');
      const dimension = fnv(trigram) % 256;
      reference[dimension] = reference[dimension]! + (fnv(trigram, fnv(trigram)) & 1 ? 1 : -1);
    }
    const length = Math.hypot(...reference);
    expect(Array.from(mockEmbedding('a 🙂b  C', 256))).toEqual(Array.from(reference, (value) => Math.fround(value / length)));
  });

  it('of a long text do not block the event loop', async () => {
    const text = 'x'.repeat(2_000_000);
    let turns = 0;
    const ticker = setInterval(() => turns++, 1);
    await mockEmbeddingAsync(text, 64);
    clearInterval(ticker);
    expect(turns).toBeGreaterThan(2);
  });

  it('follow dimensions, count usage with the tokenizer and accept token ids', async () => {
    const tokens = counter.encode('hello world');
    const result = await mockEmbeddingResult(embeddingRequest.parse({ model: 'm', input: [tokens, tokens], dimensions: 64 }), counter);
    expect(result.embeddings.map((vector) => vector.length)).toEqual([64, 64]);
    expect(result.embeddings[0]).toEqual(mockEmbedding('hello world', 64));
    expect(result.usage).toEqual({ prompt_tokens: 2 * tokens.length, total_tokens: 2 * tokens.length });
    const text = await mockEmbeddingResult(embeddingRequest.parse({ model: 'm', input: 'hello world' }), counter);
    expect(text.usage.prompt_tokens).toBe(tokens.length);
  });

  it('refuse token ids the encoding does not have', async () => {
    await expect(mockEmbeddingResult(embeddingRequest.parse({ model: 'm', input: [[1], [999_999_999]] }), counter)).rejects.toThrow(GatewayError);
  });
});
