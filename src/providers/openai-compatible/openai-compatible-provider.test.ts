import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openAiCompatibleModel } from '../../config/schema.js';
import type { OpenAiCompatibleModelConfig } from '../../config/schema.js';
import { GatewayError } from '../../errors/gateway-error.js';
import type { ChatCompletionRequest } from '../../openai/chat-completion-request.js';
import type { CompletionRequest } from '../../openai/completion-request.js';
import type { ProviderCall, StreamPart } from '../spec.js';
import { defaultFakeText, fakeCreated, fakePromptTokens, startFakeUpstream } from '../../../test/fixtures/fake-upstream.js';
import type { FakeUpstream } from '../../../test/fixtures/fake-upstream.js';
import { createOpenAiCompatibleProvider } from './openai-compatible-provider.js';
import type { OpenAiCompatibleProvider } from './openai-compatible-provider.js';
import { collectParts } from '../../../test/support/collect-parts.js';

const apiKey = 'sk-upstream-secret-key-1234';

let upstream: FakeUpstream;
let provider: OpenAiCompatibleProvider;
let model: OpenAiCompatibleModelConfig;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  provider = createOpenAiCompatibleProvider();
  model = modelConfig();
});

afterEach(() => {
  upstream.reset();
});

afterAll(async () => {
  await provider.close();
  await upstream.close();
});

function modelConfig(overrides: Record<string, unknown> = {}): OpenAiCompatibleModelConfig {
  return openAiCompatibleModel.parse({
    name: 'gpt-test',
    model: 'upstream-model',
    provider: 'openai-compatible',
    base_url: upstream.url,
    api_key: apiKey,
    headers: { 'OpenAI-Organization': 'org-test' },
    ...overrides,
  });
}

function call(overrides: Partial<ProviderCall> = {}): ProviderCall {
  return { model, signal: new AbortController().signal, requestId: 'req-test-1', ...overrides };
}

function chatRequest(overrides: Record<string, unknown> = {}): ChatCompletionRequest {
  return { model: 'gpt-test', messages: [{ role: 'user', content: 'Say hello.' }], ...overrides } as ChatCompletionRequest;
}

function completionRequest(overrides: Record<string, unknown> = {}): CompletionRequest {
  return { model: 'gpt-test', prompt: 'Say hello.', ...overrides } as CompletionRequest;
}

/** Collects parts until the iterator throws; returns both. */
async function collectUntilError(parts: AsyncIterable<StreamPart>): Promise<{ parts: StreamPart[]; error: GatewayError }> {
  const collected: StreamPart[] = [];
  try {
    for await (const part of parts) collected.push(part);
  } catch (error) {
    expect(error).toBeInstanceOf(GatewayError);
    return { parts: collected, error: error as GatewayError };
  }
  throw new Error(`expected the stream to fail; got ${JSON.stringify(collected)}`);
}

function textOf(parts: StreamPart[], choice = 0): string {
  return parts.map((part) => (part.type === 'text-delta' && part.choice === choice ? part.text : '')).join('');
}

async function rejection(promise: Promise<unknown>): Promise<GatewayError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(GatewayError);
    return error as GatewayError;
  }
  throw new Error('expected a rejection');
}

describe('openai-compatible provider: whole answers', () => {
  it('maps a chat completion and keeps its identity, message and usage', async () => {
    const result = await provider.chat(chatRequest(), call());
    expect(result).toEqual({
      id: 'chatcmpl-fake-1',
      created: fakeCreated,
      systemFingerprint: 'fp_fake',
      serviceTier: 'default',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: defaultFakeText, refusal: null, annotations: [] },
          finishReason: 'stop',
          logprobs: null,
        },
      ],
      usage: {
        prompt_tokens: fakePromptTokens,
        completion_tokens: 5,
        total_tokens: fakePromptTokens + 5,
        prompt_tokens_details: { cached_tokens: 0 },
        completion_tokens_details: { reasoning_tokens: 0 },
      },
    });
  });

  it('sends the body as it came, model renamed, with the api key, config headers and request id', async () => {
    await provider.chat(chatRequest({ temperature: 0.5, top_k: 40, chat_template_kwargs: { thinking: false } }), call());
    const recorded = upstream.requests[0];
    expect(recorded?.method).toBe('POST');
    expect(recorded?.path).toBe('/v1/chat/completions');
    expect(recorded?.body).toEqual({
      model: 'upstream-model',
      messages: [{ role: 'user', content: 'Say hello.' }],
      temperature: 0.5,
      top_k: 40,
      chat_template_kwargs: { thinking: false },
    });
    expect(recorded?.headers['authorization']).toBe(`Bearer ${apiKey}`);
    expect(recorded?.headers['openai-organization']).toBe('org-test');
    expect(recorded?.headers['x-request-id']).toBe('req-test-1');
    expect(recorded?.headers['content-type']).toBe('application/json');
  });

  it('sends no authorization header without an api key, and the model name when no upstream name is set', async () => {
    const keyless = modelConfig({ api_key: undefined, model: undefined });
    await provider.chat(chatRequest(), call({ model: keyless }));
    expect(upstream.requests[0]?.headers['authorization']).toBeUndefined();
    expect(upstream.requests[0]?.body?.['model']).toBe('gpt-test');
  });

  it('asks a whole answer even when the request says stream', async () => {
    await provider.chat(chatRequest({ stream: true, stream_options: { include_usage: true } }), call());
    expect(upstream.requests[0]?.body?.['stream']).toBe(false);
    expect(upstream.requests[0]?.body).not.toHaveProperty('stream_options');
  });

  it('sets usage to zeros when the upstream leaves it out', async () => {
    upstream.enqueue({ kind: 'answer', usage: 'omit' });
    const result = await provider.chat(chatRequest(), call());
    expect(result.usage).toEqual({ prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 });
  });

  it('maps every choice of n=2, with logprobs', async () => {
    const result = await provider.chat(chatRequest({ n: 2, logprobs: true, top_logprobs: 2 }), call());
    expect(result.choices.map((choice) => choice.message.content)).toEqual([defaultFakeText, 'Hello again from choice 1.']);
    expect(result.choices[1]?.index).toBe(1);
    const logprobs = result.choices[0]?.logprobs;
    expect(logprobs?.content?.map((token) => token.token).join('')).toBe(defaultFakeText);
    expect(logprobs?.content?.[0]).toMatchObject({ token: 'Hello', logprob: -0.1, top_logprobs: [{ token: 'Hello' }, { token: 'Hello~1' }] });
  });

  it('keeps tool calls and fields this server does not know', async () => {
    upstream.enqueue({
      kind: 'answer',
      toolCalls: [{ id: 'call_abc', name: 'get_weather', arguments: '{"city":"Paris"}' }],
      extraMessageFields: { reasoning_content: 'The user wants weather.' },
    });
    const result = await provider.chat(chatRequest({ tools: [{ type: 'function', function: { name: 'get_weather' } }] }), call());
    const choice = result.choices[0];
    expect(choice?.finishReason).toBe('tool_calls');
    expect(choice?.message.content).toBeNull();
    expect(choice?.message.tool_calls).toEqual([{ id: 'call_abc', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }]);
    expect(choice?.message).toHaveProperty('reasoning_content', 'The user wants weather.');
  });

  it('keeps a legacy function call and a refusal', async () => {
    upstream.enqueue({ kind: 'answer', functionCall: { name: 'lookup', arguments: '{"q":1}' } }, { kind: 'answer', refusal: 'I cannot help with that.' });
    const functionResult = await provider.chat(chatRequest(), call());
    expect(functionResult.choices[0]?.message.function_call).toEqual({ name: 'lookup', arguments: '{"q":1}' });
    expect(functionResult.choices[0]?.finishReason).toBe('function_call');
    const refusalResult = await provider.chat(chatRequest(), call());
    expect(refusalResult.choices[0]?.message).toMatchObject({ content: null, refusal: 'I cannot help with that.' });
  });

  it('maps a legacy completion with logprobs', async () => {
    const result = await provider.complete(completionRequest({ logprobs: 1, echo: false, best_of: 1 }), call());
    expect(upstream.requests[0]?.path).toBe('/v1/completions');
    expect(upstream.requests[0]?.body).toMatchObject({ model: 'upstream-model', prompt: 'Say hello.', logprobs: 1, best_of: 1 });
    expect(result.id).toBe('cmpl-fake-1');
    expect(result.choices[0]?.text).toBe(defaultFakeText);
    expect(result.choices[0]?.finishReason).toBe('stop');
    expect(result.choices[0]?.logprobs?.tokens).toEqual(['Hello', ' from', ' the', ' fake', ' upstream.']);
    expect(result.choices[0]?.logprobs?.text_offset).toEqual([0, 5, 10, 14, 19]);
    expect(result.usage.total_tokens).toBe(fakePromptTokens + 5);
  });
});

describe('openai-compatible provider: streams', () => {
  it('streams chat text as metadata, the role opening, text deltas, finish and usage', async () => {
    const parts = await collectParts(provider.streamChat(chatRequest({ stream: true }), call()));
    expect(parts).toEqual([
      { type: 'metadata', id: 'chatcmpl-fake-1', created: fakeCreated, systemFingerprint: 'fp_fake', serviceTier: 'default' },
      { type: 'role', choice: 0, content: '' },
      { type: 'text-delta', choice: 0, text: 'Hello' },
      { type: 'text-delta', choice: 0, text: ' from' },
      { type: 'text-delta', choice: 0, text: ' the' },
      { type: 'text-delta', choice: 0, text: ' fake' },
      { type: 'text-delta', choice: 0, text: ' upstream.' },
      { type: 'finish', choice: 0, reason: 'stop' },
      {
        type: 'usage',
        usage: {
          prompt_tokens: fakePromptTokens,
          completion_tokens: 5,
          total_tokens: fakePromptTokens + 5,
          prompt_tokens_details: { cached_tokens: 0 },
          completion_tokens_details: { reasoning_tokens: 0 },
        },
      },
    ]);
  });

  it('always asks the upstream to stream with usage, keeping the other stream options', async () => {
    await collectParts(provider.streamChat(chatRequest({ stream: true, stream_options: { include_usage: false, custom: 1 } }), call()));
    await collectParts(provider.streamComplete(completionRequest({ stream: true }), call()));
    expect(upstream.requests[0]?.body).toMatchObject({ model: 'upstream-model', stream: true, stream_options: { include_usage: true, custom: 1 } });
    expect(upstream.requests[0]?.headers['accept']).toBe('text/event-stream');
    expect(upstream.requests[1]?.body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
  });

  it('streams logprobs with the text deltas', async () => {
    const parts = await collectParts(provider.streamChat(chatRequest({ stream: true, logprobs: true, top_logprobs: 1 }), call()));
    const first = parts.find((part) => part.type === 'text-delta');
    expect(first).toEqual({
      type: 'text-delta',
      choice: 0,
      text: 'Hello',
      logprobs: { content: [{ token: 'Hello', logprob: -0.1, bytes: [72, 101, 108, 108, 111], top_logprobs: [{ token: 'Hello', logprob: -0.1, bytes: [72, 101, 108, 108, 111] }] }], refusal: null },
    });
  });

  it('streams tool calls: id and name on the first fragment only', async () => {
    upstream.enqueue({
      kind: 'answer',
      toolCalls: [
        { id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' },
        { id: 'call_2', name: 'get_time', arguments: '{"zone":"CET"}' },
      ],
    });
    const parts = await collectParts(provider.streamChat(chatRequest({ stream: true }), call()));
    const toolParts = parts.filter((part) => part.type === 'tool-call-delta');
    expect(toolParts[0]).toEqual({ type: 'tool-call-delta', choice: 0, index: 0, id: 'call_1', name: 'get_weather', argumentsDelta: '' });
    expect(toolParts.slice(1).filter((part) => part.index === 0).every((part) => part.id === undefined && part.name === undefined)).toBe(true);
    const argumentsOf = (index: number): string =>
      toolParts.filter((part) => part.index === index).map((part) => part.argumentsDelta).join('');
    expect(argumentsOf(0)).toBe('{"city":"Paris"}');
    expect(argumentsOf(1)).toBe('{"zone":"CET"}');
    expect(toolParts.find((part) => part.index === 1)).toMatchObject({ id: 'call_2', name: 'get_time' });
    expect(parts.filter((part) => part.type === 'text-delta')).toEqual([]);
    expect(parts.filter((part) => part.type === 'finish')).toEqual([{ type: 'finish', choice: 0, reason: 'tool_calls' }]);
  });

  it('streams refusals and legacy function calls', async () => {
    upstream.enqueue({ kind: 'answer', refusal: 'No way.' }, { kind: 'answer', functionCall: { name: 'lookup', arguments: '{"q":1}' } });
    const refusalParts = await collectParts(provider.streamChat(chatRequest({ stream: true }), call()));
    expect(refusalParts.filter((part) => part.type === 'refusal-delta').map((part) => (part.type === 'refusal-delta' ? part.text : ''))).toEqual(['No', ' way.']);
    const functionParts = await collectParts(provider.streamChat(chatRequest({ stream: true }), call()));
    const functionDeltas = functionParts.filter((part) => part.type === 'function-call-delta');
    expect(functionDeltas[0]).toEqual({ type: 'function-call-delta', choice: 0, name: 'lookup', argumentsDelta: '' });
    expect(functionDeltas.map((part) => (part.type === 'function-call-delta' ? part.argumentsDelta : '')).join('')).toBe('{"q":1}');
    expect(functionParts.at(-2)).toEqual({ type: 'finish', choice: 0, reason: 'function_call' });
  });

  it('streams n=2 with one finish per choice', async () => {
    const parts = await collectParts(provider.streamChat(chatRequest({ stream: true, n: 2 }), call()));
    expect(textOf(parts, 0)).toBe(defaultFakeText);
    expect(textOf(parts, 1)).toBe('Hello again from choice 1.');
    expect(parts.filter((part) => part.type === 'finish')).toEqual([
      { type: 'finish', choice: 0, reason: 'stop' },
      { type: 'finish', choice: 1, reason: 'stop' },
    ]);
    expect(parts.filter((part) => part.type === 'usage')).toHaveLength(1);
  });

  it('streams legacy completions with logprobs and usage', async () => {
    const parts = await collectParts(provider.streamComplete(completionRequest({ stream: true, logprobs: 0 }), call()));
    expect(parts[0]).toMatchObject({ type: 'metadata', id: 'cmpl-fake-1' });
    expect(textOf(parts)).toBe(defaultFakeText);
    expect(parts[2]).toEqual({
      type: 'text-delta',
      choice: 0,
      text: ' from',
      logprobs: { tokens: [' from'], token_logprobs: [-0.2], top_logprobs: [{ ' from': -0.2 }], text_offset: [5] },
    });
    expect(parts.at(-2)).toEqual({ type: 'finish', choice: 0, reason: 'stop' });
    expect(parts.at(-1)).toMatchObject({ type: 'usage', usage: { completion_tokens: 5 } });
  });

  it('accepts a stream that ends after every finish but without [DONE]', async () => {
    upstream.enqueue({ kind: 'answer', omitDone: true });
    const parts = await collectParts(provider.streamChat(chatRequest({ stream: true }), call()));
    expect(textOf(parts)).toBe(defaultFakeText);
    expect(parts.at(-1)).toMatchObject({ type: 'usage' });
  });

  it('parses events split anywhere, CRLF line ends, comments and multi-byte characters cut in half', async () => {
    const event = (payload: unknown): string => `data: ${JSON.stringify(payload)}\r\n\r\n`;
    const chunk = (delta: Record<string, unknown>, finishReason: string | null = null): unknown => ({
      id: 'chatcmpl-raw',
      object: 'chat.completion.chunk',
      created: 1,
      model: 'm',
      choices: [{ index: 0, delta, finish_reason: finishReason }],
    });
    const bytes = Buffer.from(
      `: keep-alive\r\n\r\n${event(chunk({ role: 'assistant', content: '' }))}${event(chunk({ content: 'héllo wörld ✓' }))}${event(chunk({}, 'stop'))}data: [DONE]\r\n\r\n`,
    );
    const splitAt = bytes.indexOf(Buffer.from('ö')) + 1; // inside the two bytes of ö
    upstream.enqueue({ kind: 'raw', chunks: [bytes.subarray(0, 7), bytes.subarray(7, splitAt), bytes.subarray(splitAt)], chunkDelayMs: 5 });
    const parts = await collectParts(provider.streamChat(chatRequest({ stream: true }), call()));
    expect(parts).toEqual([
      { type: 'metadata', id: 'chatcmpl-raw', created: 1, systemFingerprint: undefined, serviceTier: undefined },
      { type: 'role', choice: 0, content: '' },
      { type: 'text-delta', choice: 0, text: 'héllo wörld ✓' },
      { type: 'finish', choice: 0, reason: 'stop' },
    ]);
  });

  it('ends at [DONE] even when the upstream keeps the response open, which the timeout then closes', async () => {
    const chunk = { id: 'chatcmpl-open', created: 1, choices: [{ index: 0, delta: { content: 'Hi' }, finish_reason: 'stop' }] };
    upstream.enqueue({
      kind: 'handler',
      handle: (_request, response) => {
        response.writeHead(200, { 'content-type': 'text/event-stream' });
        response.write(`data: ${JSON.stringify(chunk)}\n\ndata: [DONE]\n\n`);
      },
    });
    const parts = await collectParts(provider.streamChat(chatRequest({ stream: true }), call({ model: modelConfig({ timeout_ms: 150 }) })));
    expect(textOf(parts)).toBe('Hi');
    expect(upstream.clientAborts).toBe(0);
    await upstream.waitForClientAborts(1);
  });

  it('sends nothing upstream before the stream is iterated', async () => {
    provider.streamChat(chatRequest({ stream: true }), call());
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(upstream.requests).toHaveLength(0);
  });
});

describe('openai-compatible provider: connections', () => {
  // A fake upstream of their own, so that connections of other tests do not count.
  let ownUpstream: FakeUpstream;
  let ownModel: OpenAiCompatibleModelConfig;
  beforeAll(async () => {
    ownUpstream = await startFakeUpstream();
    ownModel = modelConfig({ base_url: ownUpstream.url });
  });
  afterAll(async () => {
    await ownUpstream.close();
  });
  const ownCall = (): ProviderCall => call({ model: ownModel });

  it('lets the connection go back to the pool after a complete stream', async () => {
    const isolatedProvider = createOpenAiCompatibleProvider();
    const before = ownUpstream.connectionCount;
    for (let round = 0; round < 3; round++) {
      await collectParts(isolatedProvider.streamChat(chatRequest({ stream: true }), ownCall()));
      await nextTurn();
    }
    expect(ownUpstream.connectionCount - before).toBe(1);
    expect(ownUpstream.clientAborts).toBe(0);
    await isolatedProvider.close();
  });

  // undici frees a connection for the next request one turn of the event loop after the
  // response ended; requests in a real gateway are always further apart than that.
  it('reuses one keep-alive connection for sequential requests', async () => {
    const isolatedProvider = createOpenAiCompatibleProvider();
    const before = ownUpstream.connectionCount;
    await isolatedProvider.chat(chatRequest(), ownCall());
    await nextTurn();
    await collectParts(isolatedProvider.streamChat(chatRequest({ stream: true }), ownCall()));
    await nextTurn();
    await isolatedProvider.complete(completionRequest(), ownCall());
    await nextTurn();
    await collectParts(isolatedProvider.streamComplete(completionRequest({ stream: true }), ownCall()));
    await nextTurn();
    await expect(isolatedProvider.chat(chatRequest(), ownCall())).resolves.toBeDefined();
    expect(ownUpstream.connectionCount - before).toBe(1);
    await isolatedProvider.close();
  });

  it('keeps the connection after an HTTP error answer', async () => {
    const isolatedProvider = createOpenAiCompatibleProvider();
    const before = ownUpstream.connectionCount;
    ownUpstream.enqueue({ kind: 'error', status: 400 });
    await rejection(isolatedProvider.chat(chatRequest(), ownCall()));
    await nextTurn();
    ownUpstream.enqueue({ kind: 'error', status: 503 });
    const { error } = await collectUntilError(isolatedProvider.streamChat(chatRequest({ stream: true }), ownCall()));
    expect(error.status).toBe(503);
    await nextTurn();
    await isolatedProvider.chat(chatRequest(), ownCall());
    expect(ownUpstream.connectionCount - before).toBe(1);
    await isolatedProvider.close();
  });

  it('closes its connections on close()', async () => {
    await waitUntil(() => ownUpstream.openConnections === 0); // the other tests' providers are closed
    const isolatedProvider = createOpenAiCompatibleProvider();
    await isolatedProvider.chat(chatRequest(), ownCall());
    expect(ownUpstream.openConnections).toBe(1);
    await isolatedProvider.close();
    await waitUntil(() => ownUpstream.openConnections === 0);
    await expect(isolatedProvider.chat(chatRequest(), ownCall())).rejects.toMatchObject({ code: 'provider_closed' });
  });
});

describe('openai-compatible provider: upstream errors', () => {
  it('keeps a 429 with its envelope and retry headers', async () => {
    upstream.enqueue({ kind: 'error', status: 429 });
    const error = await rejection(provider.chat(chatRequest(), call()));
    expect(error.status).toBe(429);
    expect(error.source).toBe('upstream');
    expect(error.message).toBe('Upstream error (HTTP 429): Rate limit reached for requests (fake).');
    expect(error.type).toBe('requests');
    expect(error.code).toBe('rate_limit_exceeded');
    expect(error.headers).toEqual({ 'retry-after': '1', 'retry-after-ms': '1000' });
  });

  it('keeps the param of a 400, and the status of 500 and 503', async () => {
    upstream.enqueue({ kind: 'error', status: 400 }, { kind: 'error', status: 500 }, { kind: 'error', status: 503 });
    const badRequest = await rejection(provider.chat(chatRequest(), call()));
    expect(badRequest).toMatchObject({ status: 400, type: 'invalid_request_error', code: 'invalid_value', param: 'temperature' });
    const serverError = await rejection(provider.complete(completionRequest(), call()));
    expect(serverError).toMatchObject({ status: 500, type: 'server_error', code: null });
    expect(serverError.message).toMatch(/^Upstream error \(HTTP 500\): /);
    const unavailable = await rejection(provider.chat(chatRequest(), call()));
    expect(unavailable.status).toBe(503);
    expect(unavailable.headers).toEqual({});
  });

  it('throws HTTP errors of streaming requests before the first part', async () => {
    upstream.enqueue({ kind: 'error', status: 429, headers: { 'retry-after': '7' } });
    const iterator = provider.streamChat(chatRequest({ stream: true }), call())[Symbol.asyncIterator]();
    const error = await rejection(iterator.next());
    expect(error).toMatchObject({ status: 429, code: 'rate_limit_exceeded', headers: { 'retry-after': '7', 'retry-after-ms': '1000' } });
    await expect(iterator.next()).resolves.toEqual({ done: true, value: undefined });
  });

  it('quotes a body that is not an envelope, and drops integer codes', async () => {
    upstream.enqueue(
      { kind: 'error', status: 502, body: '<html>Bad Gateway</html>' },
      { kind: 'error', status: 400, error: { message: 'bad', type: 'BadRequestError', code: 400 } },
    );
    const proxyError = await rejection(provider.chat(chatRequest(), call()));
    expect(proxyError).toMatchObject({ status: 502, type: 'upstream_error', message: 'Upstream error (HTTP 502): <html>Bad Gateway</html>' });
    const vllmError = await rejection(provider.chat(chatRequest(), call()));
    expect(vllmError).toMatchObject({ status: 400, type: 'BadRequestError', code: null, message: 'Upstream error (HTTP 400): bad' });
  });

  it('never repeats the upstream api key', async () => {
    upstream.enqueue(
      { kind: 'error', status: 401, error: { message: `Incorrect API key provided: ${apiKey}.` } },
      { kind: 'error-frame', afterChunks: 2, error: { message: `key ${apiKey} revoked` } },
    );
    const error = await rejection(provider.chat(chatRequest(), call()));
    expect(error.status).toBe(401);
    expect(error.message).not.toContain(apiKey);
    expect(error.message).not.toContain('secret');
    const streamed = await collectUntilError(provider.streamChat(chatRequest({ stream: true }), call()));
    expect(streamed.error.message).not.toContain(apiKey);
  });

  it('answers 502 upstream_unreachable when nothing listens', async () => {
    const closedPort = await unusedPort();
    const unreachable = modelConfig({ base_url: `http://127.0.0.1:${closedPort}/v1` });
    const error = await rejection(provider.chat(chatRequest(), call({ model: unreachable })));
    expect(error).toMatchObject({ status: 502, type: 'upstream_error', code: 'upstream_unreachable', source: 'upstream' });
    expect(error.message).toContain('ECONNREFUSED');
    const iterator = provider.streamChat(chatRequest({ stream: true }), call({ model: unreachable }))[Symbol.asyncIterator]();
    await expect(iterator.next()).rejects.toMatchObject({ status: 502, code: 'upstream_unreachable' });
  });

  it('answers 502 when the upstream resets the connection before answering', async () => {
    upstream.enqueue({ kind: 'handler', handle: (_request, response) => response.socket?.destroy() });
    const error = await rejection(provider.chat(chatRequest(), call()));
    expect(error).toMatchObject({ status: 502, code: 'upstream_unreachable' });
  });

  it('answers 504 upstream_timeout after timeout_ms, and frees the upstream', async () => {
    upstream.enqueue({ kind: 'hang' });
    const started = Date.now();
    const error = await rejection(provider.chat(chatRequest(), call({ model: modelConfig({ timeout_ms: 150 }) })));
    expect(error).toMatchObject({ status: 504, type: 'upstream_error', code: 'upstream_timeout' });
    expect(Date.now() - started).toBeLessThan(2_000);
    await upstream.waitForClientAborts(1);
  });

  it('applies timeout_ms to the whole stream, not just the headers', async () => {
    upstream.enqueue({ kind: 'hang', afterChunks: 3 });
    const { parts, error } = await collectUntilError(provider.streamChat(chatRequest({ stream: true }), call({ model: modelConfig({ timeout_ms: 200 }) })));
    expect(textOf(parts)).toBe('Hello from');
    expect(error).toMatchObject({ status: 504, code: 'upstream_timeout' });
    await upstream.waitForClientAborts(1);
  });

  it('throws 502 upstream_stream_error when the connection dies mid-stream', async () => {
    upstream.enqueue({ kind: 'stream-dies', afterChunks: 3 });
    const { parts, error } = await collectUntilError(provider.streamChat(chatRequest({ stream: true }), call()));
    expect(textOf(parts)).toBe('Hello from');
    expect(error).toMatchObject({ status: 502, type: 'upstream_error', code: 'upstream_stream_error', source: 'upstream' });
  });

  it('throws 502 upstream_stream_error on malformed JSON in the stream', async () => {
    upstream.enqueue({ kind: 'malformed-stream', afterChunks: 2 });
    const { parts, error } = await collectUntilError(provider.streamChat(chatRequest({ stream: true }), call()));
    expect(textOf(parts)).toBe('Hello');
    expect(error).toMatchObject({ status: 502, code: 'upstream_stream_error' });
    expect(error.message).toContain('malformed JSON');
  });

  it('throws the message of an error frame', async () => {
    upstream.enqueue({ kind: 'error-frame', afterChunks: 2 });
    const { parts, error } = await collectUntilError(provider.streamChat(chatRequest({ stream: true }), call()));
    expect(textOf(parts)).toBe('Hello');
    expect(error).toMatchObject({ status: 502, type: 'upstream_error', code: 'upstream_stream_error' });
    expect(error.message).toBe('Upstream error mid-stream: The upstream model crashed (fake).');
  });

  it('throws when the stream ends without [DONE] before the answer finished', async () => {
    upstream.enqueue({
      kind: 'raw',
      chunks: ['data: {"id":"x","created":1,"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}\n\n'],
    });
    const { parts, error } = await collectUntilError(provider.streamChat(chatRequest({ stream: true }), call()));
    expect(textOf(parts)).toBe('Hi');
    expect(error).toMatchObject({ status: 502, code: 'upstream_stream_error' });
  });

  it('throws 502 for a 200 answer that is not JSON, or carries an error', async () => {
    upstream.enqueue(
      { kind: 'raw', headers: { 'content-type': 'text/plain' }, chunks: ['not json'] },
      { kind: 'raw', headers: { 'content-type': 'application/json' }, chunks: ['{"error":{"message":"model is loading"}}'] },
    );
    await expect(provider.chat(chatRequest(), call())).rejects.toMatchObject({ status: 502, code: 'upstream_invalid_response' });
    const streamed = await collectUntilError(provider.streamChat(chatRequest({ stream: true }), call()));
    expect(streamed.error).toMatchObject({ status: 502, message: 'Upstream error (HTTP 200): model is loading' });
  });
});

describe('openai-compatible provider: aborts', () => {
  it('aborts a whole answer at once when the client disconnects', async () => {
    upstream.enqueue({ kind: 'hang' });
    const controller = new AbortController();
    const pending = rejection(provider.chat(chatRequest(), call({ signal: controller.signal })));
    await upstream.waitForRequests(1);
    controller.abort();
    const error = await pending;
    expect(error).toMatchObject({ status: 499, code: 'client_closed_request' });
    await upstream.waitForClientAborts(1);
    expect(upstream.requests[0]?.abortedByClient).toBe(true);
  });

  it('sends nothing when the signal is already aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(provider.chat(chatRequest(), call({ signal: controller.signal }))).rejects.toMatchObject({ status: 499 });
    expect(upstream.requests).toHaveLength(0);
  });

  it('aborts a stream mid-way when the client disconnects', async () => {
    upstream.enqueue({ kind: 'answer', chunkDelayMs: 30 });
    const controller = new AbortController();
    const iterator = provider.streamChat(chatRequest({ stream: true }), call({ signal: controller.signal }))[Symbol.asyncIterator]();
    expect((await iterator.next()).value).toMatchObject({ type: 'metadata' });
    expect((await iterator.next()).value).toMatchObject({ type: 'role' });
    controller.abort();
    await expect(iterator.next()).rejects.toMatchObject({ status: 499 });
    await upstream.waitForClientAborts(1);
    expect(await upstream.requests[0]?.outcome).toBe('client-aborted');
  });

  it('aborts the upstream when the consumer stops iterating early', async () => {
    upstream.enqueue({ kind: 'answer', chunkDelayMs: 30 });
    for await (const part of provider.streamChat(chatRequest({ stream: true }), call())) {
      if (part.type === 'text-delta') break;
    }
    await upstream.waitForClientAborts(1);
    expect(await upstream.requests[0]?.outcome).toBe('client-aborted');
  });

  it('aborts the upstream when return() is called while next() waits on the network', async () => {
    upstream.enqueue({ kind: 'hang', afterChunks: 2 });
    const iterator = provider.streamChat(chatRequest({ stream: true }), call())[Symbol.asyncIterator]();
    await iterator.next(); // metadata
    await iterator.next(); // role
    await iterator.next(); // Hello
    const waiting = iterator.next();
    await new Promise((resolve) => setTimeout(resolve, 20));
    await iterator.return?.();
    await expect(waiting).resolves.toEqual({ done: true, value: undefined });
    await upstream.waitForClientAborts(1);
  });
});

async function unusedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

async function waitUntil(ready: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
