import { pino } from 'pino';
import { MemoryLimiter } from '../limits/memory-limiter.js';
import { createPriceTable } from '../pricing/price-table.js';
import { describe, expect, it } from 'vitest';
import { createApp } from '../app.js';
import { createMasterKeyAuthenticator } from '../auth/key-authenticator.js';
import { mockModel } from '../config/schema.js';
import { ModelRegistry } from '../gateway/model-registry.js';
import type { Provider } from '../providers/spec.js';
import { TokenCounters } from '../tokens/token-counter.js';
import { GatewayError } from '../errors/gateway-error.js';
import { embeddingInputs, embeddingRequest } from '../openai/embedding-request.js';
import { parseWith } from './parse-request.js';
import { parseEmbeddingRequest, toEmbeddingResponse } from './embeddings.js';

function errorOf(body: Record<string, unknown>): GatewayError {
  try {
    parseEmbeddingRequest(body);
  } catch (error) {
    if (error instanceof GatewayError) return error;
    throw error;
  }
  throw new Error('expected a validation error');
}

describe('embedding requests', () => {
  it('refuse a dimensions larger than any model has (the mock built such vectors and froze)', () => {
    for (const dimensions of [2 ** 31, 16_385, 1e308]) expect(errorOf({ model: 'm', input: 'x', dimensions })).toMatchObject({ status: 400, param: 'dimensions' });
    expect(() => parseEmbeddingRequest({ model: 'm', input: 'x', dimensions: 16_384 })).not.toThrow();
  });

  it('take a string, strings, token ids or lists of token ids, keeping unknown fields', () => {
    for (const input of ['hi', ['a', 'b'], [1, 2, 3], [[1], [2, 3]]]) {
      expect(parseWith(embeddingRequest, { model: 'm', input, extra: 1 })).toMatchObject({ input, extra: 1 });
    }
    expect(embeddingInputs('hi')).toEqual(['hi']);
    expect(embeddingInputs([1, 2])).toEqual([[1, 2]]);
    expect(embeddingInputs([[1], [2]])).toEqual([[1], [2]]);
  });

  it('refuse a missing, empty or too long input with param input', () => {
    expect(errorOf({ model: 'm' })).toMatchObject({ status: 400, param: 'input', code: 'missing_required_parameter' });
    expect(errorOf({ model: 'm', input: '' })).toMatchObject({ status: 400, param: 'input', message: expect.stringContaining('empty string') });
    expect(errorOf({ model: 'm', input: [] })).toMatchObject({ status: 400, param: 'input', message: expect.stringContaining('empty array') });
    expect(errorOf({ model: 'm', input: [[]] })).toMatchObject({ status: 400, param: 'input[0]' });
    expect(errorOf({ model: 'm', input: { text: 'x' } })).toMatchObject({ status: 400, param: 'input' });
    expect(errorOf({ model: 'm', input: ['ok', ''] })).toMatchObject({ status: 400, param: 'input[1]', code: 'string_below_min_length' });
    expect(errorOf({ model: 'm', input: Array.from({ length: 2049 }, () => 'x') })).toMatchObject({ status: 400, param: 'input', code: 'array_above_max_length' });
  });

  it('refuse a bad encoding_format or dimensions', () => {
    expect(errorOf({ model: 'm', input: 'x', encoding_format: 'int8' })).toMatchObject({ param: 'encoding_format', code: 'invalid_value' });
    expect(errorOf({ model: 'm', input: 'x', dimensions: 0 })).toMatchObject({ param: 'dimensions', code: 'value_below_minimum' });
    expect(errorOf({ model: 'm', input: 'x', dimensions: 1.5 })).toMatchObject({ param: 'dimensions' });
  });
});

describe('embedding responses', () => {
  const result = { embeddings: [Float32Array.from([0.6, 0.8, 0]), Float32Array.from([0, 0, 1])], usage: { prompt_tokens: 3, total_tokens: 3 } };

  it('have OpenAI shape, floats by default', () => {
    const response = toEmbeddingResponse(parseWith(embeddingRequest, { model: 'm', input: ['a', 'b'] }), result, 'm');
    expect(response).toEqual({
      object: 'list',
      data: [
        { object: 'embedding', index: 0, embedding: [Float32Array.from([0.6])[0], Float32Array.from([0.8])[0], 0] },
        { object: 'embedding', index: 1, embedding: [0, 0, 1] },
      ],
      model: 'm',
      usage: { prompt_tokens: 3, total_tokens: 3 },
    });
  });

  it('apply dimensions and base64', () => {
    const response = toEmbeddingResponse(parseWith(embeddingRequest, { model: 'm', input: ['a', 'b'], dimensions: 1, encoding_format: 'base64' }), result, 'm');
    expect(response.data.map((item) => item.embedding)).toEqual([Buffer.from([0, 0, 0x80, 0x3f]).toString('base64'), Buffer.from([0, 0, 0, 0]).toString('base64')]);
  });

  it('refuse dimensions larger than the vectors, param dimensions', () => {
    expect(() => toEmbeddingResponse(parseWith(embeddingRequest, { model: 'm', input: ['a', 'b'], dimensions: 4 }), result, 'm')).toThrow(
      expect.objectContaining({ status: 400, param: 'dimensions' }),
    );
  });
});

describe('POST /v1/embeddings', () => {
  it('refuses a model whose provider cannot embed, with param model', async () => {
    const provider = { capabilities: { vision: false, logprobs: false } } as unknown as Provider;
    const app = createApp({
      models: new ModelRegistry([{ config: mockModel.parse({ name: 'chat-only', provider: 'mock' }), provider, created: 0 }]),
      tokenCounters: new TokenCounters(),
      recorder: { record: () => {} },
      metering: { limiter: new MemoryLimiter(), prices: createPriceTable({}) },
      auditBodies: false,
      logger: pino({ level: 'silent' }),
      maxBodyBytes: 1_000_000,
      authenticator: createMasterKeyAuthenticator('sk-test'),
      corsOrigins: [],
    });
    const response = await app.request('/v1/embeddings', {
      method: 'POST',
      headers: { authorization: 'Bearer sk-test', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'chat-only', input: 'x' }),
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: { type: 'invalid_request_error', param: 'model', message: "The model 'chat-only' does not support embeddings." } });
    const get = await app.request('/v1/embeddings', { headers: { authorization: 'Bearer sk-test' } });
    expect(get.status).toBe(405);
  });
});
