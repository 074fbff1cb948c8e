/**
 * Function calling on a tiny random-weight model: the grammar makes every call valid even
 * though the model knows nothing, so these tests check the machinery, not the model.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { llamaCppModel, type LlamaCppModelConfig } from '../../config/schema.js';
import type { ChatCompletionRequest, Tool } from '../../openai/chat-completion-request.js';
import { TINY_BASE_VOCAB_SIZE, TINY_TOKEN_IDS, writeTinyGguf } from '../../../test/support/tiny-gguf.js';
import { collectParts } from '../../../test/support/collect-parts.js';
import type { ProviderCall, StreamPart } from '../spec.js';
import { createLlamaCppProvider, type LlamaCppProvider } from './llama-cpp-provider.js';

const directory = mkdtempSync(join(tmpdir(), 'chatgate-llama-tools-'));
let provider: LlamaCppProvider;
let model: LlamaCppModelConfig;
/** A model that starts every answer with the template's call prefix (one token): it always calls in auto mode. */
let caller: LlamaCppModelConfig;

const weather: Tool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather of a city',
    parameters: {
      type: 'object',
      properties: {
        city: { type: 'string', maxLength: 12 },
        days: { type: 'integer', minimum: 1, maximum: 7 },
        unit: { enum: ['celsius', 'fahrenheit'] },
      },
      required: ['city', 'days', 'unit'],
      additionalProperties: false,
    },
  },
};
const clock: Tool = {
  type: 'function',
  function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { enum: ['UTC', 'CET'] } }, required: ['zone'] } },
};
const noArguments: Tool = { type: 'function', function: { name: 'ping' } };

function call(signal = new AbortController().signal): ProviderCall {
  return { model, signal, requestId: 'req_test' };
}

function request(extra: Partial<ChatCompletionRequest> = {}): ChatCompletionRequest {
  return { model: 'tiny', messages: [{ role: 'user', content: 'What is the weather in Paris?' }], tools: [weather, clock], seed: 5, max_tokens: 200, ...extra };
}

function checkWeatherArguments(text: string): void {
  const value = JSON.parse(text) as { city: string; days: number; unit: string };
  expect(Object.keys(value).sort()).toEqual(['city', 'days', 'unit']);
  expect(value.city.length).toBeLessThanOrEqual(12);
  expect(Number.isInteger(value.days) && value.days >= 1 && value.days <= 7).toBe(true);
  expect(['celsius', 'fahrenheit']).toContain(value.unit);
}

beforeAll(async () => {
  await writeTinyGguf(join(directory, 'tiny.gguf'), { seed: 42 });
  model = llamaCppModel.parse({ name: 'tiny', provider: 'llama-cpp', path: join(directory, 'tiny.gguf'), threads: 1, context_size: 2048, parallel: 2, gpu_layers: 0 });
  // ChatML's function-call prefix in node-llama-cpp is "||call: "; as one biased token the model always opens a call.
  await writeTinyGguf(join(directory, 'caller.gguf'), {
    seed: 42,
    extraTokens: ['||call: '],
    logitBias: { [TINY_BASE_VOCAB_SIZE]: 40, [TINY_TOKEN_IDS.eos]: -30, [TINY_TOKEN_IDS.imEnd]: -30 },
  });
  caller = llamaCppModel.parse({ name: 'caller', provider: 'llama-cpp', path: join(directory, 'caller.gguf'), threads: 1, context_size: 2048, parallel: 2, gpu_layers: 0 });
  provider = createLlamaCppProvider({ models: [model, caller] });
});
afterAll(async () => {
  await provider?.close();
  rmSync(directory, { recursive: true, force: true });
});

describe('llama-cpp function calling', () => {
  it('a named tool_choice calls that function with arguments valid for its schema', async () => {
    for (const seed of [1, 2, 3]) {
      const result = await provider.chat(request({ tool_choice: { type: 'function', function: { name: 'get_weather' } }, seed }), call());
      const choice = result.choices[0]!;
      expect(choice.finishReason).toBe('tool_calls');
      expect(choice.message.content).toBeNull();
      expect(choice.message.tool_calls).toHaveLength(1);
      const toolCall = choice.message.tool_calls![0]!;
      expect(toolCall.id).toMatch(/^call_[A-Za-z0-9]{24}$/);
      expect(toolCall.type).toBe('function');
      expect(toolCall.function.name).toBe('get_weather');
      checkWeatherArguments(toolCall.function.arguments);
      expect(result.usage.completion_tokens).toBeGreaterThan(5);
    }
  });

  it('"required" calls one of the declared functions', async () => {
    const names = new Set<string>();
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const result = await provider.chat(request({ tool_choice: 'required', seed }), call());
      const toolCall = result.choices[0]!.message.tool_calls![0]!;
      names.add(toolCall.function.name);
      expect(['get_weather', 'get_time']).toContain(toolCall.function.name);
      if (toolCall.function.name === 'get_weather') checkWeatherArguments(toolCall.function.arguments);
      else expect(['UTC', 'CET']).toContain((JSON.parse(toolCall.function.arguments) as { zone: string }).zone);
      expect(result.choices[0]!.finishReason).toBe('tool_calls');
    }
    expect(names.size).toBeGreaterThan(0);
  });

  it('a function without parameters is called with {}', async () => {
    const result = await provider.chat(request({ tools: [noArguments], tool_choice: 'required' }), call());
    const ping = result.choices[0]!.message.tool_calls![0]!.function;
    expect(ping.name).toBe('ping');
    expect(JSON.parse(ping.arguments)).toEqual({});
  });

  it('streams a forced call as tool-call deltas: id and name first, then argument pieces', async () => {
    const parts = await collectParts(provider.streamChat(request({ tool_choice: { type: 'function', function: { name: 'get_weather' } } }), call()));
    const deltas = parts.filter((part): part is Extract<StreamPart, { type: 'tool-call-delta' }> => part.type === 'tool-call-delta');
    expect(deltas[0]).toMatchObject({ index: 0, name: 'get_weather', argumentsDelta: '', id: expect.stringMatching(/^call_/) });
    expect(deltas.slice(1).every((delta) => delta.id === undefined && delta.name === undefined && delta.index === 0)).toBe(true);
    expect(deltas.length).toBeGreaterThan(3);
    checkWeatherArguments(deltas.map((delta) => delta.argumentsDelta).join(''));
    expect(parts.find((part) => part.type === 'finish')).toMatchObject({ reason: 'tool_calls' });
    expect(parts.at(-1)).toMatchObject({ type: 'usage' });
    // Same seed, not streamed: the same arguments.
    const whole = await provider.chat(request({ tool_choice: { type: 'function', function: { name: 'get_weather' } } }), call());
    expect(whole.choices[0]!.message.tool_calls![0]!.function.arguments).toBe(deltas.map((delta) => delta.argumentsDelta).join(''));
  });

  it('legacy functions with a named function_call answer with function_call', async () => {
    const result = await provider.chat(
      { model: 'tiny', messages: [{ role: 'user', content: 'time?' }], functions: [clock.function], function_call: { name: 'get_time' }, seed: 1, max_tokens: 60 },
      call(),
    );
    const choice = result.choices[0]!;
    expect(choice.finishReason).toBe('function_call');
    expect(choice.message.tool_calls).toBeUndefined();
    expect(choice.message.function_call?.name).toBe('get_time');
    expect(['UTC', 'CET']).toContain((JSON.parse(choice.message.function_call!.arguments) as { zone: string }).zone);
  });

  it('"auto" lets the model answer in text (this model never calls), with the tools in its prompt', async () => {
    const plain = await provider.chat(request({ tools: undefined, max_tokens: 4 }), call());
    const auto = await provider.chat(request({ tool_choice: 'auto', max_tokens: 4 }), call());
    expect(auto.choices[0]!.finishReason).toBe('length');
    expect(typeof auto.choices[0]!.message.content).toBe('string');
    // The functions are documented in the prompt.
    expect(auto.usage.prompt_tokens).toBeGreaterThan(plain.usage.prompt_tokens + 100);
  });

  it('"auto": a model that opens a call gets it completed under the grammar, answered as tool_calls, streamed as deltas', async () => {
    const callerCall = { model: caller, signal: new AbortController().signal, requestId: 'req_caller' };
    const result = await provider.chat(request({ model: 'caller', tool_choice: 'auto', parallel_tool_calls: false }), callerCall);
    const choice = result.choices[0]!;
    expect(choice.finishReason).toBe('tool_calls');
    expect(choice.message.tool_calls).toHaveLength(1);
    const toolCall = choice.message.tool_calls![0]!;
    expect(['get_weather', 'get_time']).toContain(toolCall.function.name);
    if (toolCall.function.name === 'get_weather') checkWeatherArguments(toolCall.function.arguments);
    else expect(['UTC', 'CET']).toContain((JSON.parse(toolCall.function.arguments) as { zone: string }).zone);

    const parts = await collectParts(provider.streamChat(request({ model: 'caller', tool_choice: 'auto', parallel_tool_calls: false }), callerCall));
    const deltas = parts.filter((part): part is Extract<StreamPart, { type: 'tool-call-delta' }> => part.type === 'tool-call-delta');
    expect(deltas[0]).toMatchObject({ index: 0, id: expect.stringMatching(/^call_/), name: toolCall.function.name, argumentsDelta: '' });
    expect(deltas.map((delta) => delta.argumentsDelta).join('')).toBe(toolCall.function.arguments);
    expect(parts.find((part) => part.type === 'finish')).toMatchObject({ reason: 'tool_calls' });

    // Legacy functions in auto mode answer with function_call.
    const legacy = await provider.chat({ model: 'caller', messages: [{ role: 'user', content: 'time?' }], functions: [clock.function], seed: 5, max_tokens: 100 }, callerCall);
    expect(legacy.choices[0]!.finishReason).toBe('function_call');
    expect(legacy.choices[0]!.message.function_call?.name).toBe('get_time');
  });

  it('tool_choice "none" answers in text without the tools', async () => {
    const none = await provider.chat(request({ tool_choice: 'none', max_tokens: 4 }), call());
    const plain = await provider.chat(request({ tools: undefined, max_tokens: 4 }), call());
    expect(none.choices[0]!.message.tool_calls).toBeUndefined();
    expect(none.usage.prompt_tokens).toBe(plain.usage.prompt_tokens);
  });

  it('takes a conversation with tool calls and results, and answers after them', async () => {
    const messages: ChatCompletionRequest['messages'] = [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris","days":1,"unit":"celsius"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: '{"temperature": 21}' },
    ];
    const result = await provider.chat(request({ messages, max_tokens: 5 }), call());
    expect(typeof result.choices[0]!.message.content).toBe('string');
    const forced = await provider.chat(request({ messages, tool_choice: { type: 'function', function: { name: 'get_time' } } }), call());
    expect(forced.choices[0]!.message.tool_calls![0]!.function.name).toBe('get_time');
  });

  it('checks the arguments after generation: what the grammar cannot enforce fails clearly (after one retry)', async () => {
    const strict: Tool = {
      type: 'function',
      function: { name: 'big', parameters: { type: 'object', properties: { n: { type: 'number', minimum: 1e9 } }, required: ['n'], additionalProperties: false } },
    };
    const error = await provider.chat(request({ tools: [strict], tool_choice: 'required', max_tokens: 40 }), call()).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ status: 500, code: 'invalid_model_output', message: expect.stringContaining("arguments of 'big'") });
    const after = await provider.chat(request({ tool_choice: 'required', seed: 9 }), call());
    expect(after.choices[0]!.message.tool_calls).toHaveLength(1);
  });

  it('refuses schemas the grammar cannot express, naming the tool', async () => {
    const bad: Tool = { type: 'function', function: { name: 'bad', parameters: { type: 'object', properties: { a: { type: 'string', pattern: '^x' } } } } };
    await expect(provider.chat(request({ tools: [weather, bad], tool_choice: 'required' }), call())).rejects.toMatchObject({
      status: 400,
      param: 'tools[1].function.parameters',
      message: expect.stringContaining("function 'bad'"),
    });
    await expect(provider.chat(request({ tool_choice: 'auto', response_format: { type: 'json_object' } }), call())).rejects.toMatchObject({ status: 400, param: 'response_format' });
  });

  it('runs n choices as parallel sequences, each with its own call id', async () => {
    const result = await provider.chat(request({ tool_choice: 'required', n: 3 }), call());
    expect(result.choices.map((choice) => choice.index)).toEqual([0, 1, 2]);
    const ids = result.choices.map((choice) => choice.message.tool_calls![0]!.id);
    expect(new Set(ids).size).toBe(3);
  });
});
