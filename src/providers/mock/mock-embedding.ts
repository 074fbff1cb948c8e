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
import { yieldToEventLoop } from '../../util/yield-to-event-loop.js';

/** Work between two yields of `mockEmbeddingAsync`. */
const YIELD_AFTER_MS = 8;

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

/** Trigrams hashed between two checks of the clock in `mockEmbeddingAsync`. */
const TRIGRAMS_PER_STEP = 16_384;

/** Adds the hashed trigrams of the normalized text to `vector`, yielding every TRIGRAMS_PER_STEP trigrams. */
function* addTrigrams(normalized: string, vector: Float32Array): Generator<void> {
  const dimensions = vector.length;
  // Start offsets (UTF-16) of the last three code points: a trigram is normalized.slice(first, end).
  let first = -1;
  let second = -1;
  let third = 0;
  let count = 0;
  while (third < normalized.length) {
    const code = normalized.codePointAt(third)!;
    const end = third + (code > 0xffff ? 2 : 1);
    if (first >= 0) {
      const trigram = normalized.slice(first, end);
      const hash = fnv1a(trigram);
      const dimension = hash % dimensions;
      vector[dimension] = vector[dimension]! + (fnv1a(trigram, hash) & 1 ? 1 : -1);
      if (++count % TRIGRAMS_PER_STEP === 0) yield;
    }
    first = second;
    second = third;
    third = end;
  }
}

function normalizedText(text: string): string {
  return ` ${text.toLowerCase().replace(/\s+/g, ' ').trim()} `;
}

function finish(text: string, vector: Float32Array): Float32Array {
  // Trigrams that cancel out (or a blank text) leave a zero vector: give it a fixed direction.
  if (vector.every((value) => value === 0)) vector[fnv1a(text) % vector.length] = 1;
  return normalizeInPlace(vector);
}

/** The mock embedding of a text: hashed character trigrams of " text ", unit length. */
export function mockEmbedding(text: string, dimensions: number = MOCK_EMBEDDING_DIMENSIONS): Float32Array {
  const vector = new Float32Array(dimensions);
  for (const _step of addTrigrams(normalizedText(text), vector));
  return finish(text, vector);
}

/** `mockEmbedding` of a long text without blocking the event loop: yields every few milliseconds. */
export async function mockEmbeddingAsync(text: string, dimensions: number = MOCK_EMBEDDING_DIMENSIONS): Promise<Float32Array> {
  const vector = new Float32Array(dimensions);
  let since = performance.now();
  for (const _step of addTrigrams(normalizedText(text), vector)) {
    if (performance.now() - since >= YIELD_AFTER_MS) {
      await yieldToEventLoop();
      since = performance.now();
    }
  }
  return finish(text, vector);
}

export async function mockEmbeddingResult(request: EmbeddingRequest, counter: TokenCounter): Promise<EmbeddingResult> {
  const dimensions = request.dimensions ?? MOCK_EMBEDDING_DIMENSIONS;
  let promptTokens = 0;
  const embeddings: Float32Array[] = [];
  const inputs = embeddingInputs(request.input);
  for (const [index, input] of inputs.entries()) {
    let text: string;
    if (typeof input === 'string') {
      text = input;
      promptTokens += await counter.countAsync(input);
    } else {
      try {
        text = decodeTokens(counter, input).text;
      } catch {
        const param = typeof request.input[0] === 'number' ? 'input' : `input[${index}]`;
        throw invalidRequest(`Invalid '${param}': it contains a token id that the ${counter.encoding} encoding does not have.`, param, 'invalid_value');
      }
      promptTokens += input.length;
    }
    embeddings.push(await mockEmbeddingAsync(text, dimensions));
  }
  return { embeddings, usage: { prompt_tokens: promptTokens, total_tokens: promptTokens } };
}
