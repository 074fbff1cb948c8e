import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { llamaCppModel, type LlamaCppModelConfig } from '../../config/schema.js';
import type { ChatCompletionRequest } from '../../openai/chat-completion-request.js';
import { writeTinyGguf } from '../../../test/support/tiny-gguf.js';
import { matchesSchema } from '../mock/json-schema-check.js';
import type { ProviderCall, StreamPart } from '../spec.js';
import { createLlamaCppProvider, type LlamaCppProvider } from './llama-cpp-provider.js';
import { toGrammarSchema } from './json-schema-grammar.js';
import { outputProblem } from './structured-output.js';
import { collectParts } from '../../../test/support/collect-parts.js';

const directory = mkdtempSync(join(tmpdir(), 'chatgate-llama-json-'));
let provider: LlamaCppProvider;
const model: LlamaCppModelConfig = llamaCppModel.parse({
  name: 'tiny', provider: 'llama-cpp', path: join(directory, 'tiny.gguf'), threads: 1, context_size: 256, parallel: 1, gpu_layers: 0,
});
const call = (): ProviderCall => ({ model, signal: new AbortController().signal, requestId: 'req_test' });

const schema = {
  type: 'object',
  properties: { name: { type: 'string', maxLength: 8 }, ok: { type: 'boolean' }, kind: { enum: ['a', 'b', 'c'] } },
  required: ['name', 'ok', 'kind'],
  additionalProperties: false,
};

function request(extra: Partial<ChatCompletionRequest>): ChatCompletionRequest {
  return { model: 'tiny', messages: [{ role: 'user', content: 'Answer in JSON.' }], seed: 3, max_tokens: 120, ...extra };
}

beforeAll(async () => {
  await writeTinyGguf(join(directory, 'tiny.gguf'), { seed: 42 });
  provider = createLlamaCppProvider({ models: [model] });
});
afterAll(async () => {
  await provider?.close();
  rmSync(directory, { recursive: true, force: true });
});

describe('llama-cpp provider: response_format', () => {
  it('json_object: the answer parses as a JSON object', async () => {
    const result = await provider.chat(request({ response_format: { type: 'json_object' } }), call());
    const choice = result.choices[0]!;
    expect(choice.finishReason).toBe('stop');
    const value: unknown = JSON.parse(choice.message.content ?? '');
    expect(typeof value).toBe('object');
    expect(value).not.toBeNull();
    expect(Array.isArray(value)).toBe(false);
  });

  it('json_schema: the answer validates against the schema', async () => {
    const format = { type: 'json_schema', json_schema: { name: 'thing', schema } } as const;
    const result = await provider.chat(request({ response_format: format }), call());
    const choice = result.choices[0]!;
    expect(choice.finishReason).toBe('stop');
    const value: unknown = JSON.parse(choice.message.content ?? '');
    expect(matchesSchema(value, schema)).toBe(true);
  });

  it('json_schema streamed: the deltas concatenate to valid JSON', async () => {
    const format = { type: 'json_schema', json_schema: { name: 'thing', schema } } as const;
    const parts = await collectParts(provider.streamChat(request({ response_format: format, seed: 5 }), call()));
    const text = parts.flatMap((part) => (part.type === 'text-delta' ? [part.text] : [])).join('');
    expect(parts.filter((part) => part.type === 'text-delta').length).toBeGreaterThan(1);
    expect(parts.find((part) => part.type === 'finish')).toEqual({ type: 'finish', choice: 0, reason: 'stop' });
    expect(matchesSchema(JSON.parse(text), schema)).toBe(true);
  });

  it('is cut with finish length and the partial text at max_tokens', async () => {
    const format = { type: 'json_schema', json_schema: { name: 'thing', schema } } as const;
    const result = await provider.chat(request({ response_format: format, max_tokens: 3 }), call());
    expect(result.choices[0]?.finishReason).toBe('length');
    expect(result.usage.completion_tokens).toBe(3);
  });

  it('a complete answer that breaks what the grammar cannot enforce: 500 invalid_model_output (after a retry), or an error ending the stream', async () => {
    const pinned = { type: 'object', properties: { n: { type: 'number', minimum: 5, maximum: 5 } }, required: ['n'] };
    const format = { type: 'json_schema', json_schema: { name: 'pinned', schema: pinned } } as const;
    const error = await provider.chat(request({ response_format: format, max_tokens: 40 }), call()).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ status: 500, type: 'server_error', code: 'invalid_model_output' });
    const parts: StreamPart[] = [];
    const streamed = await (async () => {
      for await (const part of provider.streamChat(request({ response_format: format, max_tokens: 40 }), call())) parts.push(part);
    })().catch((caught: unknown) => caught);
    expect(streamed).toMatchObject({ status: 500, code: 'invalid_model_output' });
    const text = parts.flatMap((part) => (part.type === 'text-delta' ? [part.text] : [])).join('');
    expect(JSON.parse(text)).toHaveProperty('n');
    expect(parts.some((part) => part.type === 'finish')).toBe(false);
    // The sequence came back: the next request works.
    const after = await provider.chat(request({ response_format: { type: 'json_object' } }), call());
    expect(after.choices[0]?.finishReason).toBe('stop');
  });

  it('enforces small integer ranges through the grammar', async () => {
    const ranged = { type: 'object', properties: { n: { type: 'integer', minimum: 3, exclusiveMaximum: 6 } }, required: ['n'], additionalProperties: false };
    expect(toGrammarSchema(ranged)).toEqual({ type: 'object', properties: { n: { enum: [3, 4, 5] } } });
    expect(toGrammarSchema({ type: 'integer', minimum: 0, maximum: 10, multipleOf: 5 })).toEqual({ enum: [0, 5, 10] });
    expect(toGrammarSchema({ type: 'integer', minimum: 0, maximum: 1000 })).toEqual({ type: 'integer' });
    const format = { type: 'json_schema', json_schema: { name: 'ranged', schema: ranged } } as const;
    for (const seed of [1, 2, 3]) {
      const result = await provider.chat(request({ response_format: format, max_tokens: 40, seed }), call());
      expect([3, 4, 5]).toContain(JSON.parse(result.choices[0]!.message.content!).n);
    }
  });

  it('refuses schemas the grammar cannot express with a 400 naming the problem', async () => {
    const bad = [
      { type: 'object', properties: { a: { type: 'string', pattern: '^a' } } },
      { type: 'object', properties: {}, required: ['x'] },
      { not: { type: 'string' } },
      { allOf: [{ type: 'string' }] },
      { $ref: 'https://example.com/schema' },
      { type: 'object', properties: { a: false } },
    ];
    for (const schemaBad of bad) {
      const format = { type: 'json_schema', json_schema: { name: 'bad', schema: schemaBad } } as const;
      await expect(provider.chat(request({ response_format: format }), call())).rejects.toMatchObject({
        status: 400,
        type: 'invalid_request_error',
        param: 'response_format.json_schema.schema',
      });
      await expect(collectParts(provider.streamChat(request({ response_format: format }), call()))).rejects.toMatchObject({ status: 400 });
    }
    const error = await provider.chat(request({ response_format: { type: 'json_schema', json_schema: { name: 'bad', schema: bad[0]! } } }), call()).catch((caught: unknown) => caught);
    expect((error as Error).message).toContain("'pattern'");
    expect((error as Error).message).toContain('#/properties/a');
  });
});

describe('json-schema-grammar and validation', () => {
  it('translates anyOf, nullable, type lists and $defs references', () => {
    expect(toGrammarSchema({ anyOf: [{ type: 'string' }, { type: 'integer', minimum: 1 }] })).toEqual({ oneOf: [{ type: 'string' }, { type: 'integer' }] });
    expect(toGrammarSchema({ type: ['string', 'null'] })).toEqual({ oneOf: [{ type: 'string' }, { type: 'null' }] });
    expect(toGrammarSchema({ type: 'string', nullable: true, maxLength: 3 })).toEqual({ oneOf: [{ type: 'string', maxLength: 3 }, { type: 'null' }] });
    const tree = toGrammarSchema({
      type: 'object',
      properties: { root: { $ref: '#/$defs/node' } },
      $defs: { node: { type: 'object', properties: { children: { type: 'array', items: { $ref: '#/$defs/node' } } } } },
    });
    expect(tree).toMatchObject({ $defs: { d_node: { type: 'object' } }, properties: { root: { $ref: '#/$defs/d_node' } } });
  });

  it('validates what the grammar cannot enforce', () => {
    const format = { kind: 'json_schema', schema: { type: 'integer', minimum: 0, maximum: 9 }, grammarSchema: { type: 'integer' }, key: '' } as const;
    expect(outputProblem(format, '5')).toBeUndefined();
    expect(outputProblem(format, '1e3')).toContain('does not match');
    expect(outputProblem({ kind: 'json_object' }, '[1]')).toContain('not a JSON object');
    expect(outputProblem({ kind: 'json_object' }, '{"a":')).toContain('not valid JSON');
  });
});
