import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { GatewayError } from '../errors/gateway-error.js';
import { chatCompletionRequest } from '../openai/chat-completion-request.js';
import { MAX_JSON_DEPTH, nestedDeeperThan, parseWith, pathOfUnstorableText, readJsonBody } from './parse-request.js';

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

describe('readJsonBody', () => {
  /** What readJsonBody makes of a body: the value, or the error it throws. */
  async function read(text: string): Promise<{ body?: unknown; error?: GatewayError }> {
    const app = new Hono();
    let outcome: { body?: unknown; error?: GatewayError } = {};
    app.post('/', async (context) => {
      try {
        outcome = { body: await readJsonBody(context, 10_000_000) };
      } catch (error) {
        if (!(error instanceof GatewayError)) throw error;
        outcome = { error };
      }
      return context.text('');
    });
    await app.request('/', { method: 'POST', body: text, headers: { 'content-type': 'application/json' } });
    return outcome;
  }
  const nested = (depth: number, open: string, leaf: string, close: string) => `${open.repeat(depth)}${leaf}${close.repeat(depth)}`;

  it('refuses a body nested deeper than the limit with 400 (deeper ones overflow the stack of later code: a 500)', async () => {
    const tools = (schema: string) => `{"model":"m","messages":[],"tools":[{"type":"function","function":{"name":"f","parameters":${schema}}}]}`;
    for (const deep of [nested(5_000, '[', '1', ']'), nested(5_000, '{"a":', '1', '}'), tools(nested(MAX_JSON_DEPTH, '[', '1', ']'))]) {
      const { error } = await read(deep);
      expect(error).toMatchObject({ status: 400, type: 'invalid_request_error', code: 'json_too_deep', param: null });
    }
  });

  it('accepts a body nested up to the limit', async () => {
    expect((await read(nested(MAX_JSON_DEPTH, '[', '1', ']'))).error).toBeUndefined();
    expect((await read('{"model":"m","messages":[{"role":"user","content":"hi"}]}')).body).toMatchObject({ model: 'm' });
  });

  it('nestedDeeperThan counts levels of arrays and objects only', () => {
    expect(nestedDeeperThan('text', 0)).toBe(false);
    expect(nestedDeeperThan({ a: [{}] }, 3)).toBe(false);
    expect(nestedDeeperThan({ a: [{}] }, 2)).toBe(true);
    expect(nestedDeeperThan(JSON.parse(nested(200_000, '[', '1', ']')), 128)).toBe(true);
  });
});

describe('pathOfUnstorableText', () => {
  it('names where a NUL character is, in a value or a key', () => {
    expect(pathOfUnstorableText({ a: 'ok', b: [1, { c: 'x\u0000' }] })).toEqual(['b', 1, 'c']);
    expect(pathOfUnstorableText({ m: { ['k\u0000']: 'v' } })).toEqual(['m', 'k\u0000']);
    expect(pathOfUnstorableText('\u0000')).toEqual([]);
    expect(pathOfUnstorableText({ a: ['b\udfff\ud800'] })).toEqual(['a', 0]);
    expect(pathOfUnstorableText({ a: 'paired 😀 is fine' })).toBeNull();
    expect(pathOfUnstorableText({ a: ['fine'] })).toBeNull();
  });

  it('walks a deeply nested value in linear time', () => {
    const deep = JSON.parse(`${'['.repeat(100_000)}"x\\u0000"${']'.repeat(100_000)}`) as unknown;
    const started = performance.now();
    expect(pathOfUnstorableText(deep)).toHaveLength(100_000);
    // Linear: a few ms; the quadratic walk it replaces took minutes at this depth.
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});
