/**
 * The mock's embeddings: deterministic, unit-length vectors built from hashed character
 * trigrams of the lower-cased text (feature hashing, each trigram adding ±1 to one
 * dimension). The same text always gets the same vector, and texts sharing many trigrams get
 * close vectors, so cosine similarity behaves roughly like a (lexical) semantic search.
 */
import { invalidRequest } from '../../errors/gateway-error.js';
import { normalizeInPlace } from '../../openai/embedding-encoding.js';
import { embeddingInputs, type EmbeddingRequest } from '../../openai/embedding-request.js';
import type { TokenCounter } from '../../tokens/token-counter.js';
import type { EmbeddingResult } from '../spec.js';
import { decodeTokens } from './token-decoding.js';

/** Dimensions of a mock embedding when the request sets no `dimensions` (text-embedding-3-small's). */
export const MOCK_EMBEDDING_DIMENSIONS = 1536;

/** 32-bit FNV-1a of a string's UTF-16 code units. */
function fnv1a(text: string, seed = 0x811c9dc5): number {
  let hash = seed >>> 0;
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/** The mock embedding of a text: hashed character trigrams of " text ", unit length. */
export function mockEmbedding(text: string, dimensions: number = MOCK_EMBEDDING_DIMENSIONS): Float32Array {
  const vector = new Float32Array(dimensions);
  const characters = [...` ${text.toLowerCase().replace(/\s+/g, ' ').trim()} `];
  for (let index = 0; index + 3 <= characters.length; index++) {
    const trigram = characters.slice(index, index + 3).join('');
    const hash = fnv1a(trigram);
    const dimension = hash % dimensions;
    vector[dimension] = vector[dimension]! + (fnv1a(trigram, hash) & 1 ? 1 : -1);
  }
  // Trigrams that cancel out (or a blank text) leave a zero vector: give it a fixed direction.
  if (vector.every((value) => value === 0)) vector[fnv1a(text) % dimensions] = 1;
  return normalizeInPlace(vector);
}

export function mockEmbeddingResult(request: EmbeddingRequest, counter: TokenCounter): EmbeddingResult {
  const dimensions = request.dimensions ?? MOCK_EMBEDDING_DIMENSIONS;
  let promptTokens = 0;
  const embeddings = embeddingInputs(request.input).map((input, index) => {
    let text: string;
    if (typeof input === 'string') {
      text = input;
      promptTokens += counter.count(input);
    } else {
      try {
        text = decodeTokens(counter, input).text;
      } catch {
        const param = typeof request.input[0] === 'number' ? 'input' : `input[${index}]`;
        throw invalidRequest(`Invalid '${param}': it contains a token id that the ${counter.encoding} encoding does not have.`, param, 'invalid_value');
      }
      promptTokens += input.length;
    }
    return mockEmbedding(text, dimensions);
  });
  return { embeddings, usage: { prompt_tokens: promptTokens, total_tokens: promptTokens } };
}
