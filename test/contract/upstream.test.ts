/**
 * The `openai-compatible` provider through the real server and the official SDK, against
 * a fake OpenAI upstream on loopback that can fail in every way an upstream fails.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeUpstream } from '../fixtures/fake-upstream.js';
import { startChatgate, type RunningChatgate } from '../support/start-chatgate.js';

let upstream: FakeUpstream;
let chatgate: RunningChatgate;
let client: OpenAI;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  chatgate = await startChatgate({
    config: `
models:
  - name: gpt-4-turbo
    provider: openai-compatible
    base_url: ${upstream.url}
    api_key: \${UPSTREAM_API_KEY}
    model: upstream-model-name
    context_window: 128000
  - name: dead-upstream
    provider: openai-compatible
    base_url: http://127.0.0.1:9/v1
  - name: slow-upstream
    provider: openai-compatible
    base_url: ${upstream.url}
    timeout_ms: 500
`,
    environment: { UPSTREAM_API_KEY: 'sk-upstream-secret' },
  });
  client = chatgate.client();
});
afterAll(async () => {
  await chatgate?.stop();
  await upstream?.close();
});
beforeEach(() => upstream.reset());

const hello: OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming = {
  model: 'gpt-4-turbo',
  messages: [{ role: 'user', content: 'Hello' }],
};

describe('openai-compatible upstream', () => {
  it('forwards a chat request with the upstream model name and key, and the answer back', async () => {
    upstream.setBehavior({ kind: 'answer', text: 'Hi from upstream.' });
    const completion = await client.chat.completions.create({ ...hello, user: 'user-1', metadata: { team: 'a' } });
    expect(completion.choices[0]?.message.content).toBe('Hi from upstream.');
    expect(completion.model).toBe('gpt-4-turbo');
    expect(completion.usage?.total_tokens).toBeGreaterThan(0);
    const request = upstream.requests[0]!;
    expect(request.body?.model).toBe('upstream-model-name');
    expect(request.body?.user).toBe('user-1');
    expect(request.headers.authorization).toBe('Bearer sk-upstream-secret');
    expect(request.headers['x-request-id']).toMatch(/^req_/);
  });

  it('streams the upstream answer with usage', async () => {
    upstream.setBehavior({ kind: 'answer', text: 'one two three four' });
    const stream = await client.chat.completions.create({ ...hello, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe('one two three four');
    expect(usage?.completion_tokens).toBeGreaterThan(0);
  });

  it('streams upstream tool calls as proper deltas', async () => {
    upstream.setBehavior({ kind: 'answer', toolCalls: [{ id: 'call_up1', name: 'lookup', arguments: '{"query":"gateways"}' }] });
    const stream = client.chat.completions.stream({
      model: 'gpt-4-turbo',
      messages: [{ role: 'user', content: 'Hello' }],
      tools: [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: { query: { type: 'string' } } } } }],
    });
    const final = await stream.finalChatCompletion();
    const call = final.choices[0]?.message.tool_calls?.[0];
    if (call?.type !== 'function') throw new Error('expected a function call');
    expect(call.id).toBe('call_up1');
    expect(JSON.parse(call.function.arguments)).toEqual({ query: 'gateways' });
    expect(final.choices[0]?.finish_reason).toBe('tool_calls');
  });

  it('passes legacy completions through', async () => {
    upstream.setBehavior({ kind: 'answer', text: 'completed text' });
    const completion = await client.completions.create({ model: 'gpt-4-turbo', prompt: 'Say' });
    expect(completion.choices[0]?.text).toBe('completed text');
    expect(upstream.requests[0]?.path).toBe('/v1/completions');
  });

  it('keeps an upstream 429 a 429, with retry-after, saying it came from upstream', async () => {
    upstream.setBehavior({ kind: 'error', status: 429 });
    const request = client.chat.completions.create(hello);
    await expect(request).rejects.toBeInstanceOf(OpenAI.RateLimitError);
    const response = await fetch(`${chatgate.url}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${chatgate.key}`, 'content-type': 'application/json' },
      body: JSON.stringify(hello),
    });
    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after')).toBe('1');
    expect(response.headers.get('x-chatgate-error-source')).toBe('upstream');
    expect((await response.json()).error.message).toMatch(/^Upstream error \(HTTP 429\)/);
  });

  it('keeps an upstream 5xx a 5xx, and the SDK retries it', async () => {
    upstream.setBehavior({ kind: 'error', status: 503 });
    await expect(client.chat.completions.create(hello)).rejects.toBeInstanceOf(OpenAI.InternalServerError);
    upstream.reset();
    upstream.enqueue({ kind: 'error', status: 500 });
    upstream.setBehavior({ kind: 'answer', text: 'second try' });
    const retrying = chatgate.client({ maxRetries: 1 });
    const completion = await retrying.chat.completions.create(hello);
    expect(completion.choices[0]?.message.content).toBe('second try');
  });

  it('gives 502 for an unreachable upstream and 504 for a slow one', async () => {
    await expect(client.chat.completions.create({ ...hello, model: 'dead-upstream' })).rejects.toMatchObject({ status: 502, code: 'upstream_unreachable' });
    upstream.setBehavior({ kind: 'hang' });
    await expect(client.chat.completions.create({ ...hello, model: 'slow-upstream' })).rejects.toMatchObject({ status: 504, code: 'upstream_timeout' });
  });

  it('turns an upstream that dies mid-stream into an error the SDK raises', async () => {
    upstream.setBehavior({ kind: 'stream-dies', afterChunks: 3, text: 'a b c d e f g h' });
    const stream = await client.chat.completions.create({ ...hello, stream: true });
    let text = '';
    await expect(
      (async () => {
        for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
      })(),
    ).rejects.toBeInstanceOf(OpenAI.APIError);
    expect(text.length).toBeGreaterThan(0);
  });

  it('turns malformed upstream SSE into an error the SDK raises, not a crash', async () => {
    upstream.setBehavior({ kind: 'malformed-stream', afterChunks: 2 });
    const stream = await client.chat.completions.create({ ...hello, stream: true });
    await expect(
      (async () => {
        for await (const chunk of stream) void chunk;
      })(),
    ).rejects.toThrow(/upstream/i);
    // The server is still healthy.
    upstream.setBehavior({ kind: 'answer', text: 'still here' });
    expect((await client.chat.completions.create(hello)).choices[0]?.message.content).toBe('still here');
  });

  it('aborts the upstream request when the client goes away mid-stream', async () => {
    upstream.setBehavior({ kind: 'answer', text: 'word '.repeat(200), chunkDelayMs: 20 });
    const controller = new AbortController();
    const stream = await client.chat.completions.create({ ...hello, stream: true }, { signal: controller.signal });
    let chunks = 0;
    try {
      for await (const chunk of stream) {
        void chunk;
        if (++chunks === 3) controller.abort();
      }
    } catch {
      // The SDK may end the iteration or raise an abort error: either is fine here.
    }
    expect(chunks).toBeLessThan(10);
    await upstream.waitForClientAborts(1);
    expect(await upstream.requests[0]!.outcome).toBe('client-aborted');
  });

  it('aborts the upstream request when a non-streaming client goes away', async () => {
    upstream.setBehavior({ kind: 'hang' });
    const controller = new AbortController();
    const request = client.chat.completions.create(hello, { signal: controller.signal });
    await upstream.waitForRequests(1);
    controller.abort();
    await expect(request).rejects.toThrow();
    await upstream.waitForClientAborts(1);
  });
});
