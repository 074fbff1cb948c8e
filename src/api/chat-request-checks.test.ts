import { describe, expect, it } from 'vitest';
import { GatewayError } from '../errors/gateway-error.js';
import type { ResolvedModel } from '../gateway/model-registry.js';
import type { ChatCompletionRequest } from '../openai/chat-completion-request.js';
import { checkChatRequest } from './chat-request-checks.js';

const model = { config: { name: 'mock-model' }, provider: { capabilities: { logprobs: false } } } as unknown as ResolvedModel;

function withSchema(schema: Record<string, unknown>): ChatCompletionRequest {
  return {
    model: 'mock-model',
    messages: [{ role: 'user', content: 'JSON please' }],
    response_format: { type: 'json_schema', json_schema: { name: 'answer', strict: true, schema } },
  } as ChatCompletionRequest;
}

describe('checkChatRequest', () => {
  it('refuses a response format no answer can match with 400 (the model could only fail: 502)', () => {
    const check = () => checkChatRequest(withSchema({ type: 'object', required: ['a'], additionalProperties: false }), model);
    expect(check).toThrow(GatewayError);
    expect(check).toThrow(expect.objectContaining({ status: 400, param: 'response_format.json_schema.schema', code: 'invalid_json_schema' }));
  });

  it('accepts a satisfiable response format', () => {
    expect(() => checkChatRequest(withSchema({ type: 'object', properties: { a: { type: 'string' } }, required: ['a'], additionalProperties: false }), model)).not.toThrow();
  });
});
