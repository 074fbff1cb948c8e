/**
 * Guardrails and `POST /v1/moderations` through the real server and the official SDK:
 * deny patterns on input and output (JSON and streamed), json_schema validation with one
 * retry against a fake upstream, and moderation answered by a mock model or passed to the
 * fake upstream's `/v1/moderations`.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeUpstream } from '../fixtures/fake-upstream.js';
import { startChatgate, type RunningChatgate } from '../support/start-chatgate.js';

let upstream: FakeUpstream;
let local: RunningChatgate;
let passThrough: RunningChatgate;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  [local, passThrough] = await Promise.all([
    startChatgate({
      config: `
guardrails:
  deny_input: ['forbidden topic']
  deny_output: ['secret plan']
  max_input_chars: 2000
moderation:
  model: mock-model
models:
  - name: mock-model
    provider: mock
  - name: upstream-model
    provider: openai-compatible
    base_url: ${upstream.url}
`,
    }),
    startChatgate({
      config: `
moderation:
  model: upstream-model
models:
  - name: upstream-model
    provider: openai-compatible
    base_url: ${upstream.url}
    api_key: sk-upstream-secret
`,
    }),
  ]);
});
afterAll(async () => {
  await Promise.all([local?.stop(), passThrough?.stop()]);
  await upstream?.close();
});
beforeEach(() => upstream.reset());

describe('guardrails', () => {
  it('refuses a denied input with 400 content_policy_violation, without echoing it', async () => {
    const error = await local
      .client()
      .chat.completions.create({ model: 'mock-model', messages: [{ role: 'user', content: 'Tell me about the Forbidden Topic' }] })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    const apiError = error as InstanceType<typeof OpenAI.BadRequestError>;
    expect(apiError.code).toBe('content_policy_violation');
    expect(apiError.type).toBe('invalid_request_error');
    expect(apiError.message).toContain('deny_input[0]');
    expect(apiError.message.toLowerCase()).not.toContain('forbidden topic');
  });

  it('refuses an input over max_input_chars with 400 input_too_large', async () => {
    const error = await local
      .client()
      .completions.create({ model: 'mock-model', prompt: 'x'.repeat(2001) })
      .catch((caught: unknown) => caught);
    expect((error as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('input_too_large');
  });

  it('filters a denied output with finish_reason content_filter', async () => {
    const completion = await local.client().chat.completions.create({ model: 'mock-model', messages: [{ role: 'user', content: 'Here is the secret plan for you' }] });
    expect(completion.choices[0]?.finish_reason).toBe('content_filter');
    expect(completion.choices[0]?.message.content).toBeNull();
  });

  it('stops a stream with content_filter before the matching piece', async () => {
    const stream = await local.client().chat.completions.create({
      model: 'mock-model',
      messages: [{ role: 'user', content: 'Words before the secret plan and words after' }],
      stream: true,
    });
    let text = '';
    const reasons: Array<string | null> = [];
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      if (chunk.choices[0]?.finish_reason) reasons.push(chunk.choices[0].finish_reason);
    }
    expect(reasons).toEqual(['content_filter']);
    expect(text.toLowerCase()).not.toContain('secret plan');
    expect(text).toContain('Words before');
  });

  it('retries an answer that breaks the requested JSON schema, then fails with 502 invalid_model_output', async () => {
    const request: OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming = {
      model: 'upstream-model',
      messages: [{ role: 'user', content: 'A person as JSON' }],
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'person', strict: true, schema: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'], additionalProperties: false } },
      },
    };
    upstream.enqueue({ kind: 'answer', text: 'not json at all' }, { kind: 'answer', text: '{"name": "Ann"}' });
    const completion = await local.client().chat.completions.create(request);
    expect(completion.choices[0]?.message.content).toBe('{"name": "Ann"}');
    expect(upstream.requests).toHaveLength(2);

    upstream.reset();
    upstream.enqueue({ kind: 'answer', text: 'not json' }, { kind: 'answer', text: '{"nom": "Ann"}' });
    const error = await local.client().chat.completions.create(request).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(502);
    expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe('invalid_model_output');
    expect((error as InstanceType<typeof OpenAI.APIError>).message).toContain("'name' is missing");
    expect(upstream.requests).toHaveLength(2);
  });
});

describe('POST /v1/moderations', () => {
  it('answers with a local (mock) model in OpenAI\'s shape', async () => {
    const moderation = await local.client().moderations.create({ input: ['first text', 'second text'] });
    expect(moderation.id).toMatch(/^modr-/);
    expect(moderation.model).toBe('mock-model');
    expect(moderation.results).toHaveLength(2);
    for (const result of moderation.results) {
      expect(typeof result.flagged).toBe('boolean');
      expect(Object.keys(result.categories)).toHaveLength(13);
      expect(typeof result.categories['self-harm/intent']).toBe('boolean');
      const score = result.category_scores['violence/graphic'];
      expect(score).toBeGreaterThanOrEqual(0);
      expect(score).toBeLessThanOrEqual(1);
      expect(result.category_applied_input_types.violence).toEqual(['text']);
    }
  });

  it('refuses image inputs for a local model, and a bad input, with 400', async () => {
    const image = await local
      .client()
      .moderations.create({ input: [{ type: 'image_url', image_url: { url: 'https://example.com/a.png' } }] })
      .catch((caught: unknown) => caught);
    expect((image as InstanceType<typeof OpenAI.BadRequestError>).status).toBe(400);
    const bad = await fetch(`${local.url}/moderations`, { method: 'POST', headers: { authorization: `Bearer ${local.key}`, 'content-type': 'application/json' }, body: '{"input": 42}' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { param: string } }).error.param).toBe('input');
  });

  it('passes the request to the upstream\'s /v1/moderations with its key', async () => {
    const moderation = await passThrough.client().moderations.create({ input: 'I will kill the process', model: 'omni-moderation-latest' });
    expect(moderation.results[0]?.flagged).toBe(true);
    expect(moderation.results[0]?.categories.violence).toBe(true);
    expect(moderation.model).toBe('omni-moderation-latest');
    const request = upstream.requests.find((recorded) => recorded.path === '/v1/moderations')!;
    expect(request.headers.authorization).toBe('Bearer sk-upstream-secret');
    expect(request.body).toEqual({ input: 'I will kill the process', model: 'omni-moderation-latest' });
  });

  it('says how to configure moderation when it is not', async () => {
    // The pass-through server has moderation; the mock server too: check the message of a server without.
    const { startChatgate: start } = await import('../support/start-chatgate.js');
    const bare = await start({ config: 'models:\n  - name: m\n    provider: mock\n' });
    try {
      const error = await bare.client().moderations.create({ input: 'hello' }).catch((caught: unknown) => caught);
      expect((error as InstanceType<typeof OpenAI.BadRequestError>).status).toBe(400);
      expect((error as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('moderation_not_configured');
      expect((error as InstanceType<typeof OpenAI.BadRequestError>).message).toContain('moderation: { model:');
    } finally {
      await bare.stop();
    }
  });
});
