import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { mockModel, type ModelConfig } from '../../config/schema.js';
import { GatewayError } from '../../errors/gateway-error.js';
import { chatCompletionRequest, type ChatCompletionRequest } from '../../openai/chat-completion-request.js';
import { completionRequest, type CompletionRequest } from '../../openai/completion-request.js';
import type { ChatLogprobs, CompletionLogprobs } from '../../openai/responses.js';
import { TokenCounters } from '../../tokens/token-counter.js';
import type { ProviderCall, StreamPart } from '../spec.js';
import { createMockProvider } from './mock-provider.js';
import { collectParts } from '../../../test/support/collect-parts.js';

const tokenCounters = new TokenCounters();
const provider = createMockProvider({ tokenCounters });
const ajv = new Ajv2020({ strict: false, validateFormats: false });

function model(overrides: Record<string, unknown> = {}): ModelConfig {
  return mockModel.parse({ name: 'mock', provider: 'mock', ...overrides });
}

function call(overrides: Partial<ProviderCall> = {}, modelOverrides: Record<string, unknown> = {}): ProviderCall {
  return { model: model(modelOverrides), signal: new AbortController().signal, requestId: 'req_test', ...overrides };
}

function chatRequest(body: Record<string, unknown>): ChatCompletionRequest {
  return chatCompletionRequest.parse({ model: 'mock', ...body });
}

function completionRequestOf(body: Record<string, unknown>): CompletionRequest {
  return completionRequest.parse({ model: 'mock', ...body });
}

const say = (text: string) => [{ role: 'user', content: text }];

function textOf(parts: StreamPart[], choice = 0): string {
  return parts.map((part) => (part.type === 'text-delta' && part.choice === choice ? part.text : '')).join('');
}

const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Weather of a city',
    strict: true,
    parameters: {
      type: 'object',
      properties: {
        city: { type: 'string' },
        unit: { type: ['string', 'null'], enum: ['celsius', 'fahrenheit', null] },
        days: { type: 'integer', minimum: 1, maximum: 7 },
      },
      required: ['city', 'unit', 'days'],
      additionalProperties: false,
    },
  },
};
const timeTool = {
  type: 'function',
  function: {
    name: 'get_time',
    parameters: { type: 'object', properties: { zone: { type: 'string', pattern: '^[A-Z][a-z]+/[A-Z][a-z]+$' } }, required: ['zone'] },
  },
};
const noParametersTool = { type: 'function', function: { name: 'ping' } };

describe('mock chat: text answers', () => {
  it('echoes the last user message, with usage from the model tokenizer', async () => {
    const messages = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'first question' },
      { role: 'assistant', content: 'first answer' },
      { role: 'user', content: 'Hello there, mock!' },
    ];
    const result = await provider.chat(chatRequest({ messages }), call());
    const counter = await tokenCounters.get('cl100k_base');
    expect(result.choices).toEqual([
      { index: 0, message: { role: 'assistant', content: 'Hello there, mock!', refusal: null }, finishReason: 'stop', logprobs: null },
    ]);
    expect(result.usage).toEqual({
      prompt_tokens: counter.countChat(chatRequest({ messages }).messages),
      completion_tokens: counter.count('Hello there, mock!'),
      total_tokens: counter.countChat(chatRequest({ messages }).messages) + counter.count('Hello there, mock!'),
    });
    expect(result.systemFingerprint).toBe('fp_mock');
  });

  it('counts with the configured tokenizer', async () => {
    const request = chatRequest({ messages: say('Ünïcödé text for o200k') });
    const result = await provider.chat(request, call({}, { tokenizer: 'o200k_base' }));
    const counter = await tokenCounters.get('o200k_base');
    expect(result.usage.completion_tokens).toBe(counter.count('Ünïcödé text for o200k'));
    expect(result.usage.prompt_tokens).toBe(counter.countChat(request.messages));
  });

  it('joins text parts with a space and describes images, audio and files in brackets', async () => {
    const content = [
      { type: 'text', text: 'What is in' },
      { type: 'text', text: 'this picture?' },
      { type: 'image_url', image_url: { url: 'https://example.com/cat.png' } },
      { type: 'input_audio', input_audio: { data: 'AAAA', format: 'wav' } },
      { type: 'file', file: { file_id: 'file-1' } },
    ];
    const result = await provider.chat(chatRequest({ messages: [{ role: 'user', content }] }), call());
    expect(result.choices[0]?.message.content).toBe('What is in this picture? [image] [audio] [file]');
  });

  it('quotes tool results when the conversation ends with them, naming each function', async () => {
    const messages = [
      { role: 'user', content: 'weather and time in Paris? use get_weather and get_time' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '{}' } },
          { id: 'call_b', type: 'function', function: { name: 'get_time', arguments: '{}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'call_a', content: '{"temperature":21}' },
      { role: 'tool', tool_call_id: 'call_b', content: [{ type: 'text', text: '12:00' }] },
    ];
    const result = await provider.chat(chatRequest({ messages, tools: [weatherTool, timeTool], tool_choice: 'required' }), call());
    expect(result.choices[0]?.message.content).toBe('get_weather returned: {"temperature":21}\nget_time returned: 12:00');
    expect(result.choices[0]?.finishReason).toBe('stop');
  });

  it('quotes legacy function results', async () => {
    const messages = [
      { role: 'user', content: 'call lookup' },
      { role: 'assistant', content: null, function_call: { name: 'lookup', arguments: '{}' } },
      { role: 'function', name: 'lookup', content: 'found it' },
    ];
    const result = await provider.chat(chatRequest({ messages, functions: [{ name: 'lookup' }] }), call());
    expect(result.choices[0]?.message.content).toBe('lookup returned: found it');
  });

  it('cuts at the first stop sequence, which is left out', async () => {
    const request = chatRequest({ messages: say('one, two. three; four'), stop: ['; ', '. '] });
    const result = await provider.chat(request, call());
    expect(result.choices[0]?.message.content).toBe('one, two');
    expect(result.choices[0]?.finishReason).toBe('stop');
    const single = await provider.chat(chatRequest({ messages: say('alpha beta gamma'), stop: 'gamma' }), call());
    expect(single.choices[0]?.message.content).toBe('alpha beta ');
  });

  it('truncates to max_tokens, max_completion_tokens or the model max_output_tokens, with finish_reason length', async () => {
    const counter = await tokenCounters.get('cl100k_base');
    const text = 'The quick brown fox jumps over the lazy dog again and again';
    const byMaxTokens = await provider.chat(chatRequest({ messages: say(text), max_tokens: 4 }), call());
    expect(byMaxTokens.choices[0]?.message.content).toBe('The quick brown fox');
    expect(byMaxTokens.choices[0]?.finishReason).toBe('length');
    expect(byMaxTokens.usage.completion_tokens).toBe(4);

    const preferred = await provider.chat(chatRequest({ messages: say(text), max_tokens: 4, max_completion_tokens: 2 }), call());
    expect(preferred.choices[0]?.message.content).toBe('The quick');

    const byModel = await provider.chat(chatRequest({ messages: say(text) }), call({}, { max_output_tokens: 3 }));
    expect(byModel.choices[0]?.message.content).toBe('The quick brown');

    const roomy = await provider.chat(chatRequest({ messages: say(text), max_tokens: counter.count(text) }), call());
    expect(roomy.choices[0]?.finishReason).toBe('stop');
  });

  it('never cuts a character in half, and leaves the shared tokenizer decoder clean', async () => {
    const counter = await tokenCounters.get('cl100k_base');
    const text = '日本語のテキスト🙂🙂';
    const tokens = counter.encode(text);
    for (let limit = 1; limit < tokens.length; limit++) {
      const result = await provider.chat(chatRequest({ messages: say(text), max_tokens: limit, logprobs: true }), call());
      const content = result.choices[0]?.message.content ?? '';
      expect(text.startsWith(content)).toBe(true);
      expect(content).not.toContain('\uFFFD');
      expect(result.usage.completion_tokens).toBeLessThanOrEqual(limit);
      expect(result.choices[0]?.logprobs?.content?.map((entry) => entry.token).join('')).toBe(content);
      expect(counter.decode(counter.encode('語'))).toBe('語');
    }
  });

  it('answers n identical choices and counts each', async () => {
    const result = await provider.chat(chatRequest({ messages: say('same answer'), n: 3, seed: 7, temperature: 1.5 }), call());
    expect(result.choices.map((choice) => choice.index)).toEqual([0, 1, 2]);
    expect(new Set(result.choices.map((choice) => choice.message.content))).toEqual(new Set(['same answer']));
    const counter = await tokenCounters.get('cl100k_base');
    expect(result.usage.completion_tokens).toBe(3 * counter.count('same answer'));
  });

  it('gives per-token logprobs, with top_logprobs alternatives', async () => {
    const text = 'Hello wörld 🙂';
    const result = await provider.chat(chatRequest({ messages: say(text), logprobs: true, top_logprobs: 3 }), call());
    const content = result.choices[0]?.logprobs?.content ?? [];
    expect(content.map((entry) => entry.token).join('')).toBe(text);
    for (const entry of content) {
      expect(entry.logprob).toBe(0);
      expect(entry.bytes).toEqual([...Buffer.from(entry.token)]);
      expect(entry.top_logprobs).toHaveLength(3);
      expect(entry.top_logprobs[0]).toEqual({ token: entry.token, logprob: 0, bytes: entry.bytes });
      expect(new Set(entry.top_logprobs.map((top) => top.token)).size).toBe(3);
      expect(entry.top_logprobs[1]?.logprob).toBeLessThan(0);
    }
    const withoutTop = await provider.chat(chatRequest({ messages: say(text), logprobs: true }), call());
    expect(withoutTop.choices[0]?.logprobs?.content?.[0]?.top_logprobs).toEqual([]);
    expect(withoutTop.choices[0]?.logprobs?.refusal).toBeNull();
  });

  it('answers JSON for response_format json_object and json_schema', async () => {
    const asObject = await provider.chat(chatRequest({ messages: say('make it "json"'), response_format: { type: 'json_object' } }), call());
    expect(JSON.parse(asObject.choices[0]?.message.content ?? '')).toEqual({ echo: 'make it "json"' });

    const schema = {
      type: 'object',
      properties: {
        title: { type: 'string' },
        rating: { type: 'integer', minimum: 1, maximum: 5 },
        tags: { type: 'array', items: { type: 'string', enum: ['new', 'used'] }, minItems: 2, uniqueItems: true },
        published: { type: ['string', 'null'], format: 'date' },
      },
      required: ['title', 'rating', 'tags', 'published'],
      additionalProperties: false,
    };
    const result = await provider.chat(
      chatRequest({ messages: say('A review'), response_format: { type: 'json_schema', json_schema: { name: 'review', strict: true, schema } } }),
      call(),
    );
    const parsed: unknown = JSON.parse(result.choices[0]?.message.content ?? '');
    expect(ajv.validate(schema, parsed)).toBe(true);
    expect(parsed).toMatchObject({ title: 'A review' });
  });
});

describe('mock chat: tools', () => {
  it('calls the tools named in the last user message (tool_choice auto), with valid arguments', async () => {
    const result = await provider.chat(
      chatRequest({ messages: say('What is the weather in Paris? Use GET_WEATHER and get_time please.'), tools: [weatherTool, timeTool, noParametersTool] }),
      call(),
    );
    const choice = result.choices[0];
    expect(choice?.finishReason).toBe('tool_calls');
    expect(choice?.message.content).toBeNull();
    const calls = choice?.message.tool_calls ?? [];
    expect(calls.map((toolCall) => toolCall.function.name)).toEqual(['get_weather', 'get_time']);
    expect(ajv.validate(weatherTool.function.parameters, JSON.parse(calls[0]?.function.arguments ?? ''))).toBe(true);
    expect(ajv.validate(timeTool.function.parameters, JSON.parse(calls[1]?.function.arguments ?? ''))).toBe(true);
    for (const toolCall of calls) {
      expect(toolCall.id).toMatch(/^call_[A-Za-z0-9]{24}$/);
      expect(toolCall.type).toBe('function');
    }
    expect(new Set(calls.map((toolCall) => toolCall.id)).size).toBe(2);
    const counter = await tokenCounters.get('cl100k_base');
    const expectedCompletion = calls.reduce((total, toolCall) => total + counter.count(toolCall.function.name) + counter.count(toolCall.function.arguments), 0);
    expect(result.usage.completion_tokens).toBe(expectedCompletion);
    expect(result.usage.prompt_tokens).toBeGreaterThan(counter.count(JSON.stringify([weatherTool, timeTool, noParametersTool])));
  });

  it('matches whole tool names only', async () => {
    const result = await provider.chat(chatRequest({ messages: say('call get_weather_forecast'), tools: [weatherTool] }), call());
    expect(result.choices[0]?.message.content).toBe('call get_weather_forecast');
  });

  it('calls only the first mentioned tool when parallel_tool_calls is false', async () => {
    const result = await provider.chat(
      chatRequest({ messages: say('get_time and get_weather'), tools: [weatherTool, timeTool], parallel_tool_calls: false }),
      call(),
    );
    expect(result.choices[0]?.message.tool_calls?.map((toolCall) => toolCall.function.name)).toEqual(['get_weather']);
  });

  it('answers text under auto when no tool is mentioned, and under none', async () => {
    const auto = await provider.chat(chatRequest({ messages: say('just chatting'), tools: [weatherTool] }), call());
    expect(auto.choices[0]?.message).toEqual({ role: 'assistant', content: 'just chatting', refusal: null });
    const none = await provider.chat(chatRequest({ messages: say('get_weather now'), tools: [weatherTool], tool_choice: 'none' }), call());
    expect(none.choices[0]?.message.content).toBe('get_weather now');
  });

  it('calls the first tool under required, and the named tool under a named choice', async () => {
    const required = await provider.chat(chatRequest({ messages: say('anything'), tools: [timeTool, weatherTool], tool_choice: 'required' }), call());
    expect(required.choices[0]?.message.tool_calls?.map((toolCall) => toolCall.function.name)).toEqual(['get_time']);

    const named = await provider.chat(
      chatRequest({ messages: say('get_time'), tools: [timeTool, weatherTool, noParametersTool], tool_choice: { type: 'function', function: { name: 'ping' } } }),
      call(),
    );
    expect(named.choices[0]?.message.tool_calls?.[0]?.function).toEqual({ name: 'ping', arguments: '{}' });
  });

  it('rejects a named tool_choice that is not among the tools, and required without tools, with a 400', async () => {
    const unknown = provider.chat(
      chatRequest({ messages: say('hi'), tools: [weatherTool], tool_choice: { type: 'function', function: { name: 'nope' } } }),
      call(),
    );
    await expect(unknown).rejects.toBeInstanceOf(GatewayError);
    await expect(unknown).rejects.toMatchObject({ status: 400, type: 'invalid_request_error', param: 'tool_choice' });
    await expect(provider.chat(chatRequest({ messages: say('hi'), tool_choice: 'required' }), call())).rejects.toMatchObject({
      status: 400,
      param: 'tool_choice',
    });
  });

  it('gives every choice its own tool call ids', async () => {
    const result = await provider.chat(chatRequest({ messages: say('get_weather'), tools: [weatherTool], n: 3 }), call());
    const ids = result.choices.map((choice) => choice.message.tool_calls?.[0]?.id);
    expect(new Set(ids).size).toBe(3);
    expect(result.choices.every((choice) => choice.finishReason === 'tool_calls')).toBe(true);
  });

  it('answers legacy functions with function_call', async () => {
    const functions = [weatherTool.function, { name: 'lookup', parameters: { properties: { query: { type: 'string' } } } }];
    const auto = await provider.chat(chatRequest({ messages: say('please LOOKUP cats'), functions }), call());
    expect(auto.choices[0]?.finishReason).toBe('function_call');
    expect(auto.choices[0]?.message).toEqual({
      role: 'assistant',
      content: null,
      refusal: null,
      function_call: { name: 'lookup', arguments: JSON.stringify({ query: 'please LOOKUP cats' }) },
    });

    const named = await provider.chat(chatRequest({ messages: say('hello'), functions, function_call: { name: 'get_weather' } }), call());
    const argumentsObject: unknown = JSON.parse(named.choices[0]?.message.function_call?.arguments ?? '');
    expect(ajv.validate(weatherTool.function.parameters, argumentsObject)).toBe(true);

    const none = await provider.chat(chatRequest({ messages: say('lookup'), functions, function_call: 'none' }), call());
    expect(none.choices[0]?.message.content).toBe('lookup');

    await expect(
      provider.chat(chatRequest({ messages: say('hi'), functions, function_call: { name: 'missing' } }), call()),
    ).rejects.toMatchObject({ status: 400, param: 'function_call' });
  });

  it('gives null logprobs content for tool calls', async () => {
    const result = await provider.chat(chatRequest({ messages: say('get_weather'), tools: [weatherTool], logprobs: true }), call());
    expect(result.choices[0]?.logprobs).toEqual({ content: null, refusal: null });
  });
});

describe('mock chat: streaming', () => {
  it('streams word by word to the same text, then finish and usage', async () => {
    const request = chatRequest({ messages: say('  Streaming  works\tword by word.\n') });
    const whole = await provider.chat(request, call());
    const parts = await collectParts(provider.streamChat(request, call()));
    expect(parts[0]).toEqual({ type: 'metadata', systemFingerprint: 'fp_mock' });
    const deltas = parts.filter((part) => part.type === 'text-delta');
    expect(deltas.map((part) => part.type === 'text-delta' && part.text)).toEqual(['  Streaming  ', 'works\t', 'word ', 'by ', 'word.\n']);
    expect(textOf(parts)).toBe(whole.choices[0]?.message.content);
    expect(parts.at(-2)).toEqual({ type: 'finish', choice: 0, reason: 'stop' });
    expect(parts.at(-1)).toEqual({ type: 'usage', usage: whole.usage });
  });

  it('streams each of n choices, with limits, to the non-streamed text', async () => {
    const request = chatRequest({ messages: say('a b c d e f g h'), n: 2, max_tokens: 5 });
    const whole = await provider.chat(request, call());
    const parts = await collectParts(provider.streamChat(request, call()));
    for (const choice of [0, 1]) {
      expect(textOf(parts, choice)).toBe(whole.choices[choice]?.message.content);
      expect(parts.filter((part) => part.type === 'finish' && part.choice === choice)).toEqual([{ type: 'finish', choice, reason: 'length' }]);
    }
    expect(parts.filter((part) => part.type === 'usage')).toHaveLength(1);
  });

  it('streams logprobs that concatenate to the non-streamed ones', async () => {
    const request = chatRequest({ messages: say('Logprobs, streamed: 日本語 too'), logprobs: true, top_logprobs: 2 });
    const whole = await provider.chat(request, call());
    const parts = await collectParts(provider.streamChat(request, call()));
    const streamed = parts.flatMap((part) => (part.type === 'text-delta' ? ((part.logprobs as ChatLogprobs).content ?? []) : []));
    expect(streamed).toEqual(whole.choices[0]?.logprobs?.content);
  });

  it('streams tool calls: id and name first, then argument fragments', async () => {
    const request = chatRequest({ messages: say('get_weather and get_time'), tools: [weatherTool, timeTool] });
    const parts = await collectParts(provider.streamChat(request, call()));
    const deltas = parts.filter((part): part is Extract<StreamPart, { type: 'tool-call-delta' }> => part.type === 'tool-call-delta');
    for (const index of [0, 1]) {
      const fragments = deltas.filter((part) => part.index === index);
      expect(fragments[0]).toMatchObject({ choice: 0, argumentsDelta: '' });
      expect(fragments[0]?.id).toMatch(/^call_[A-Za-z0-9]{24}$/);
      expect(fragments.slice(1).every((fragment) => fragment.id === undefined && fragment.name === undefined)).toBe(true);
      expect(fragments.length).toBeGreaterThan(2);
      const argumentsText = fragments.map((fragment) => fragment.argumentsDelta).join('');
      const schema = index === 0 ? weatherTool.function.parameters : timeTool.function.parameters;
      expect(ajv.validate(schema, JSON.parse(argumentsText))).toBe(true);
    }
    expect(deltas[0]?.name).toBe('get_weather');
    expect(parts.find((part) => part.type === 'finish')).toEqual({ type: 'finish', choice: 0, reason: 'tool_calls' });
    expect(parts.some((part) => part.type === 'text-delta')).toBe(false);
  });

  it('streams legacy function calls', async () => {
    const request = chatRequest({ messages: say('lookup'), functions: [{ name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] } }] });
    const parts = await collectParts(provider.streamChat(request, call()));
    const deltas = parts.filter((part): part is Extract<StreamPart, { type: 'function-call-delta' }> => part.type === 'function-call-delta');
    expect(deltas[0]).toEqual({ type: 'function-call-delta', choice: 0, name: 'lookup', argumentsDelta: '' });
    expect(JSON.parse(deltas.map((part) => part.argumentsDelta).join(''))).toEqual({ q: 'lookup' });
    expect(parts.find((part) => part.type === 'finish')).toEqual({ type: 'finish', choice: 0, reason: 'function_call' });
  });

  it('waits stream_delay_ms between parts', async () => {
    const started = performance.now();
    const parts = await collectParts(provider.streamChat(chatRequest({ messages: say('one two three four') }), call({}, { stream_delay_ms: 25 })));
    expect(parts.filter((part) => part.type === 'text-delta')).toHaveLength(4);
    expect(performance.now() - started).toBeGreaterThanOrEqual(70);
  });

  it('stops promptly with the abort reason when the signal aborts', async () => {
    const controller = new AbortController();
    const stream = provider.streamChat(chatRequest({ messages: say('one two three four') }), call({ signal: controller.signal }, { stream_delay_ms: 10_000 }));
    const iterator = stream[Symbol.asyncIterator]();
    expect((await iterator.next()).value).toMatchObject({ type: 'metadata' });
    expect((await iterator.next()).value).toMatchObject({ type: 'text-delta', text: 'one ' });
    const started = performance.now();
    const pending = iterator.next();
    const reason = new Error('client went away');
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('refuses to start on an aborted signal', async () => {
    const controller = new AbortController();
    controller.abort(new Error('gone'));
    await expect(provider.chat(chatRequest({ messages: say('x') }), call({ signal: controller.signal }))).rejects.toThrow('gone');
    await expect(collectParts(provider.streamChat(chatRequest({ messages: say('x') }), call({ signal: controller.signal })))).rejects.toThrow('gone');
  });
});

describe('mock completions', () => {
  it('echoes the prompt as the completion, 16 tokens by default', async () => {
    const counter = await tokenCounters.get('cl100k_base');
    const short = await provider.complete(completionRequestOf({ prompt: 'Once upon a time' }), call());
    expect(short.choices).toEqual([{ index: 0, text: 'Once upon a time', finishReason: 'stop', logprobs: null }]);
    expect(short.usage).toEqual({ prompt_tokens: 4, completion_tokens: 4, total_tokens: 8 });

    const long = 'one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen';
    const result = await provider.complete(completionRequestOf({ prompt: long }), call());
    expect(result.choices[0]?.finishReason).toBe('length');
    expect(counter.count(result.choices[0]?.text ?? '')).toBe(16);
    expect(result.usage.completion_tokens).toBe(16);
  });

  it('honours max_tokens (including 0), stop and echo', async () => {
    const limited = await provider.complete(completionRequestOf({ prompt: 'a b c d e', max_tokens: 2 }), call());
    expect(limited.choices[0]).toMatchObject({ text: 'a b', finishReason: 'length' });
    const stopped = await provider.complete(completionRequestOf({ prompt: 'Q: hi\nA: hello', stop: ['\n'] }), call());
    expect(stopped.choices[0]).toMatchObject({ text: 'Q: hi', finishReason: 'stop' });
    const echoed = await provider.complete(completionRequestOf({ prompt: 'Hi there', echo: true, suffix: 'ignored' }), call());
    expect(echoed.choices[0]?.text).toBe('Hi thereHi there');
    const scoring = await provider.complete(completionRequestOf({ prompt: 'Score me', echo: true, max_tokens: 0 }), call());
    expect(scoring.choices[0]).toMatchObject({ text: 'Score me', finishReason: 'length' });
    expect(scoring.usage.completion_tokens).toBe(0);
  });

  it('answers n choices per prompt, indexed prompt × n + i', async () => {
    const result = await provider.complete(completionRequestOf({ prompt: ['first', 'second'], n: 2 }), call());
    expect(result.choices.map((choice) => [choice.index, choice.text])).toEqual([
      [0, 'first'],
      [1, 'first'],
      [2, 'second'],
      [3, 'second'],
    ]);
    expect(result.usage).toEqual({ prompt_tokens: 2, completion_tokens: 4, total_tokens: 6 });
  });

  it('decodes token prompts with the model tokenizer', async () => {
    const counter = await tokenCounters.get('cl100k_base');
    const one = await provider.complete(completionRequestOf({ prompt: counter.encode('token prompt') }), call());
    expect(one.choices[0]?.text).toBe('token prompt');
    const many = await provider.complete(completionRequestOf({ prompt: [counter.encode('alpha'), counter.encode('beta')] }), call());
    expect(many.choices.map((choice) => choice.text)).toEqual(['alpha', 'beta']);
    expect(many.usage.prompt_tokens).toBe(2);
  });

  it('rejects token ids the tokenizer does not have, with a 400', async () => {
    await expect(provider.complete(completionRequestOf({ prompt: [1, 999_999_999] }), call())).rejects.toMatchObject({
      status: 400,
      param: 'prompt',
    });
  });

  it('gives logprobs in the legacy shape, scoring the echoed prompt from its second token', async () => {
    const prompt = 'Hello world';
    const plain = await provider.complete(completionRequestOf({ prompt, logprobs: 2 }), call());
    const logprobs = plain.choices[0]?.logprobs as CompletionLogprobs;
    expect(logprobs.tokens).toEqual(['Hello', ' world']);
    expect(logprobs.token_logprobs).toEqual([0, 0]);
    expect(logprobs.text_offset).toEqual([11, 16]);
    expect(logprobs.top_logprobs?.[0]).toEqual({ Hello: 0, ' the': -10 });

    const echoed = await provider.complete(completionRequestOf({ prompt, logprobs: 0, echo: true }), call());
    const echoedLogprobs = echoed.choices[0]?.logprobs as CompletionLogprobs;
    expect(echoedLogprobs.tokens).toEqual(['Hello', ' world', 'Hello', ' world']);
    expect(echoedLogprobs.token_logprobs).toEqual([null, 0, 0, 0]);
    expect(echoedLogprobs.top_logprobs).toEqual([null, {}, {}, {}]);
    expect(echoedLogprobs.text_offset).toEqual([0, 5, 11, 16]);
  });

  it('streams to the same text and logprobs', async () => {
    const request = completionRequestOf({ prompt: ['Stream this prompt back', 'and this one'], n: 2, echo: true, logprobs: 1 });
    const whole = await provider.complete(request, call());
    const parts = await collectParts(provider.streamComplete(request, call()));
    expect(parts[0]).toEqual({ type: 'metadata', systemFingerprint: 'fp_mock' });
    for (const choice of whole.choices) {
      expect(textOf(parts, choice.index)).toBe(choice.text);
      const streamedTokens = parts.flatMap((part) =>
        part.type === 'text-delta' && part.choice === choice.index ? (part.logprobs as CompletionLogprobs).tokens : [],
      );
      expect(streamedTokens).toEqual(choice.logprobs?.tokens);
      expect(parts.filter((part) => part.type === 'finish' && part.choice === choice.index)).toHaveLength(1);
    }
    expect(parts.at(-1)).toEqual({ type: 'usage', usage: whole.usage });
  });
});
