import { describe, expect, it } from 'vitest';
import { GatewayError } from '../errors/gateway-error.js';
import { chatCompletionRequest } from '../openai/chat-completion-request.js';
import { parseWith } from './parse-request.js';

function errorOf(body: unknown): GatewayError {
  try {
    parseWith(chatCompletionRequest, body);
  } catch (error) {
    if (error instanceof GatewayError) return error;
    throw error;
  }
  throw new Error('expected a validation error');
}

const user = { role: 'user', content: 'hi' };

describe('parseWith', () => {
  it('names missing parameters', () => {
    const error = errorOf({ model: 'a' });
    expect(error.status).toBe(400);
    expect(error.param).toBe('messages');
    expect(error.message).toBe("Missing required parameter: 'messages'.");
    expect(errorOf({ model: 'a', messages: [{ role: 'user' }] }).param).toBe('messages[0].content');
  });

  it('names bad types and ranges', () => {
    expect(errorOf({ model: 'a', messages: [user], temperature: 'hot' }).message).toMatch(/Invalid type for 'temperature'/);
    const high = errorOf({ model: 'a', messages: [user], temperature: 3 });
    expect(high.param).toBe('temperature');
    expect(high.message).toContain('<= 2');
    expect(errorOf({ model: 'a', messages: [user], n: 1.5 }).message).toContain('an integer');
    expect(errorOf({ model: 'a', messages: [] }).code).toBe('array_below_min_length');
  });

  it('reaches into unions for the specific field', () => {
    const role = errorOf({ model: 'a', messages: [{ role: 'bogus', content: 'x' }] });
    expect(role.param).toBe('messages[0].role');
    expect(role.message).toContain("'system'");
    const part = errorOf({ model: 'a', messages: [{ role: 'user', content: [{ type: 'video' }] }] });
    expect(part.param).toBe('messages[0].content[0].type');
    expect(errorOf({ model: 'a', messages: [user], tool_choice: 'maybe' }).param).toBe('tool_choice');
  });

  it('refuses a body that is not an object', () => {
    expect(() => parseWith(chatCompletionRequest, [1, 2])).toThrow(/JSON object/);
  });

  it('keeps unknown fields for upstreams that know them', () => {
    const parsed = parseWith(chatCompletionRequest, { model: 'a', messages: [user], reasoning_effort: 'low' });
    expect((parsed as Record<string, unknown>).reasoning_effort).toBe('low');
  });
});
