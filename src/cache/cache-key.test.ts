import { describe, expect, it } from 'vitest';
import type { ChatCompletionRequest } from '../openai/chat-completion-request.js';
import type { CompletionRequest } from '../openai/completion-request.js';
import { canonicalJson, chatCacheKey, completionCacheKey, isDeterministic, semanticSplit } from './cache-key.js';

const base: ChatCompletionRequest = { model: 'm', messages: [{ role: 'user', content: 'Hello' }], temperature: 0 };
const key = (request: Partial<ChatCompletionRequest>, model = 'm') => chatCacheKey(model, { ...base, ...request } as ChatCompletionRequest);

describe('cache keys', () => {
  it('sort object keys and drop undefined values in canonical JSON', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: undefined }], c: null } })).toBe('{"a":{"c":null,"d":[1,{"z":1}]},"b":1}');
  });

  it('are the same for equivalent requests', () => {
    const reference = key({});
    expect(key({ stream: true, stream_options: { include_usage: true } })).toBe(reference);
    expect(key({ user: 'alice', metadata: { a: 'b' }, store: true })).toBe(reference);
    expect(key({ n: 1 })).toBe(reference);
    expect(key({ top_p: null, seed: null, stop: null })).toBe(reference);
    expect(key({ messages: [{ role: 'user', content: [{ type: 'text', text: 'Hello' }] }] })).toBe(reference);
    expect(key({ max_tokens: 10 })).toBe(key({ max_completion_tokens: 10 }));
    expect(key({ stop: 'x' })).toBe(key({ stop: ['x'] }));
    // Key order of the body does not matter.
    const reordered = JSON.parse(JSON.stringify({ temperature: 0, messages: [{ content: 'Hello', role: 'user' }], model: 'other-alias' }));
    expect(chatCacheKey('m', reordered)).toBe(reference);
  });

  it('differ for everything that can change the answer', () => {
    const reference = key({});
    const variants: Array<Partial<ChatCompletionRequest>> = [
      { messages: [{ role: 'user', content: 'Hello!' }] },
      { messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello' }] },
      { temperature: 0.5 },
      { top_p: 0.9 },
      { seed: 1 },
      { n: 2 },
      { max_tokens: 5 },
      { stop: ['.'] },
      { presence_penalty: 1 },
      { frequency_penalty: 1 },
      { logprobs: true },
      { top_logprobs: 2, logprobs: true },
      { response_format: { type: 'json_object' } },
      { tools: [{ type: 'function', function: { name: 'f' } }] },
      { tool_choice: 'required' },
      { functions: [{ name: 'f' }] },
      { logit_bias: { '1': 5 } },
      { unknown_parameter: 1 } as Partial<ChatCompletionRequest>,
    ];
    const keys = variants.map((variant) => key(variant));
    expect(new Set([reference, ...keys]).size).toBe(variants.length + 1);
    expect(key({}, 'other-model')).not.toBe(reference);
  });

  it('separate chat and legacy completions', () => {
    const completion: CompletionRequest = { model: 'm', prompt: 'Hello', temperature: 0 };
    expect(completionCacheKey('m', completion)).not.toBe(key({}));
    expect(completionCacheKey('m', { ...completion, stream: true, user: 'u' })).toBe(completionCacheKey('m', completion));
    expect(completionCacheKey('m', { ...completion, prompt: 'Hello!' })).not.toBe(completionCacheKey('m', completion));
  });

  it('split off the last user message for the semantic cache', () => {
    const split = semanticSplit('m', { ...base, messages: [{ role: 'system', content: 'S' }, { role: 'user', content: 'What is the capital of France?' }] });
    expect(split?.text).toBe('What is the capital of France?');
    const other = semanticSplit('m', { ...base, messages: [{ role: 'system', content: 'S' }, { role: 'user', content: 'Capital of Spain?' }] });
    expect(other?.scope).toBe(split?.scope);
    expect(semanticSplit('m', { ...base, messages: [{ role: 'system', content: 'T' }, { role: 'user', content: 'x' }] })?.scope).not.toBe(split?.scope);
    expect(semanticSplit('m', { ...base, temperature: 0.2 })?.scope).not.toBe(semanticSplit('m', base)?.scope);
    expect(semanticSplit('m', { ...base, messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }] })).toBeNull();
    expect(semanticSplit('m', { ...base, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:x' } }] }] })).toBeNull();
  });
});

describe('the deterministic rule', () => {
  it('holds for temperature 0 or a seed, not otherwise', () => {
    expect(isDeterministic({ temperature: 0 })).toBe(true);
    expect(isDeterministic({ seed: 42 })).toBe(true);
    expect(isDeterministic({ temperature: 1, seed: 0 })).toBe(true);
    expect(isDeterministic({})).toBe(false);
    expect(isDeterministic({ temperature: 0.7 })).toBe(false);
    expect(isDeterministic({ temperature: null, seed: null })).toBe(false);
  });
});
