import { describe, expect, it } from 'vitest';
import { GatewayError, contextLengthExceeded, invalidRequest, modelNotFound, toGatewayError } from './gateway-error.js';

describe('GatewayError', () => {
  it('renders the OpenAI envelope with string-or-null code and param', () => {
    expect(invalidRequest('bad', 'temperature').toBody()).toEqual({
      error: { message: 'bad', type: 'invalid_request_error', param: 'temperature', code: null },
    });
    expect(modelNotFound('x').toBody().error.code).toBe('model_not_found');
    expect(modelNotFound('x').status).toBe(404);
  });

  it('says how many tokens were asked for when the context window is exceeded', () => {
    const error = contextLengthExceeded({ contextWindow: 100, promptTokens: 90, completionTokens: 20 });
    expect(error.status).toBe(400);
    expect(error.code).toBe('context_length_exceeded');
    expect(error.message).toContain('110 tokens (90 in the messages, 20 in the completion)');
  });

  it('hides unknown errors behind a 500', () => {
    const error = toGatewayError(new Error('secret detail'));
    expect(error).toBeInstanceOf(GatewayError);
    expect(error.status).toBe(500);
    expect(error.message).not.toContain('secret');
  });
});
