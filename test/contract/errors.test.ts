/** Each error status, in OpenAI's envelope, as the official SDK sees it. */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startChatgate, type RunningChatgate } from '../support/start-chatgate.js';

let chatgate: RunningChatgate;
let client: OpenAI;

beforeAll(async () => {
  chatgate = await startChatgate({
    config: `
server:
  max_body_bytes: 4096
models:
  - name: small-model
    provider: mock
    context_window: 50
  - name: gpt-4-turbo
    provider: mock
`,
  });
  client = chatgate.client();
});
afterAll(() => chatgate?.stop());

async function rawPost(path: string, body: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${chatgate.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${chatgate.key}`, 'content-type': 'application/json', ...headers },
    body,
  });
}

describe('errors', () => {
  it('401 without a key or with a wrong one', async () => {
    const wrong = chatgate.client({ apiKey: 'sk-wrong' });
    await expect(wrong.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    await expect(wrong.models.list()).rejects.toMatchObject({ status: 401, code: 'invalid_api_key' });
    const response = await fetch(`${chatgate.url}/models`);
    expect(response.status).toBe(401);
    expect((await response.json()).error).toMatchObject({ type: 'invalid_request_error', code: 'missing_api_key' });
  });

  it('400 naming the bad parameter', async () => {
    const request = client.chat.completions.create({ model: 'gpt-4-turbo', messages: [{ role: 'user', content: 'x' }], temperature: 5 });
    await expect(request).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    await expect(request).rejects.toMatchObject({ status: 400, param: 'temperature', type: 'invalid_request_error' });
    const missing = rawPost('/chat/completions', JSON.stringify({ model: 'gpt-4-turbo' }));
    expect((await (await missing).json()).error).toMatchObject({ param: 'messages', message: "Missing required parameter: 'messages'." });
  });

  it('400 for a body that is not JSON', async () => {
    const response = await rawPost('/chat/completions', '{not json');
    expect(response.status).toBe(400);
    expect((await response.json()).error.type).toBe('invalid_request_error');
  });

  it('404 for an unknown model, with model_not_found', async () => {
    const request = client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] });
    await expect(request).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(request).rejects.toMatchObject({ status: 404, code: 'model_not_found', param: 'model' });
  });

  it('404 for an unknown route and 405 for a wrong method', async () => {
    const unknown = await fetch(`${chatgate.url}/nothing-here`, { headers: { authorization: `Bearer ${chatgate.key}` } });
    expect(unknown.status).toBe(404);
    expect((await unknown.json()).error.code).toBe('unknown_url');
    const wrongMethod = await fetch(`${chatgate.url}/chat/completions`, { headers: { authorization: `Bearer ${chatgate.key}` } });
    expect(wrongMethod.status).toBe(405);
  });

  it('413 for an oversized body', async () => {
    const request = client.chat.completions.create({ model: 'gpt-4-turbo', messages: [{ role: 'user', content: 'x'.repeat(10_000) }] });
    await expect(request).rejects.toMatchObject({ status: 413, code: 'request_too_large' });
    // Without a content-length header too (chunked upload).
    const chunked = await fetch(`${chatgate.url}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${chatgate.key}`, 'content-type': 'application/json' },
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode(JSON.stringify({ model: 'gpt-4-turbo', messages: [{ role: 'user', content: 'y'.repeat(10_000) }] })));
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(413);
  });

  it('400 context_length_exceeded for a prompt over the window', async () => {
    const request = client.chat.completions.create({
      model: 'small-model',
      messages: [{ role: 'user', content: 'word '.repeat(60) }],
    });
    await expect(request).rejects.toMatchObject({ status: 400, code: 'context_length_exceeded', param: 'messages' });
    const withCompletion = client.chat.completions.create({ model: 'small-model', messages: [{ role: 'user', content: 'hi' }], max_tokens: 100 });
    await expect(withCompletion).rejects.toMatchObject({ code: 'context_length_exceeded' });
    const legacy = client.completions.create({ model: 'small-model', prompt: 'word '.repeat(60), max_tokens: 1 });
    await expect(legacy).rejects.toMatchObject({ code: 'context_length_exceeded', param: 'prompt' });
  });

  it('400 for inconsistent requests', async () => {
    await expect(
      client.chat.completions.create({ model: 'gpt-4-turbo', messages: [{ role: 'user', content: 'x' }], tool_choice: 'required' }),
    ).rejects.toMatchObject({ status: 400, param: 'tool_choice' });
    await expect(
      client.chat.completions.create({ model: 'gpt-4-turbo', messages: [{ role: 'tool', tool_call_id: 'call_1', content: 'x' }] }),
    ).rejects.toMatchObject({ status: 400, param: 'messages[0].tool_call_id' });
    await expect(
      client.chat.completions.create({ model: 'gpt-4-turbo', messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_object' } }),
    ).rejects.toMatchObject({ status: 400, param: 'messages' });
  });
});

describe('headers', () => {
  it('sets x-request-id (keeping the client one), openai-processing-ms and openai-version', async () => {
    const response = await rawPost('/chat/completions', JSON.stringify({ model: 'gpt-4-turbo', messages: [{ role: 'user', content: 'x' }] }), {
      'x-request-id': 'my-trace-123',
    });
    expect(response.headers.get('x-request-id')).toBe('my-trace-123');
    expect(Number(response.headers.get('openai-processing-ms'))).toBeGreaterThanOrEqual(0);
    expect(response.headers.get('openai-version')).toBe('2020-10-01');
    const failed = await rawPost('/chat/completions', '{}');
    expect(failed.headers.get('x-request-id')).toMatch(/^req_[0-9a-f]{32}$/);
    expect(failed.headers.get('x-chatgate-error-source')).toBe('gateway');
  });

  it('exposes the request id through the SDK', async () => {
    const { response } = await client.chat.completions
      .create({ model: 'gpt-4-turbo', messages: [{ role: 'user', content: 'x' }] })
      .withResponse();
    expect(response.headers.get('x-request-id')).toMatch(/^req_/);
  });
});
