import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { llamaCppModel, type LlamaCppModelConfig } from '../../config/schema.js';
import { GatewayError } from '../../errors/gateway-error.js';
import type { ChatCompletionRequest } from '../../openai/chat-completion-request.js';
import { TINY_TOKEN_IDS, writeTinyGguf } from '../../../test/support/tiny-gguf.js';
import type { ProviderCall, StreamPart } from '../spec.js';
import { createLlamaCppProvider, type LlamaCppProvider } from './llama-cpp-provider.js';
import { collectParts } from '../../../test/support/collect-parts.js';

const directory = mkdtempSync(join(tmpdir(), 'chatgate-llama-cpp-'));
let provider: LlamaCppProvider;

function modelConfig(name: string, file: string, extra: Record<string, unknown> = {}): LlamaCppModelConfig {
  return llamaCppModel.parse({ name, provider: 'llama-cpp', path: join(directory, file), threads: 1, context_size: 256, parallel: 2, gpu_layers: 0, ...extra });
}

const models = {
  tiny: () => modelConfig('tiny', 'tiny.gguf'),
  neverStops: () => modelConfig('never-stops', 'never-stops.gguf'),
  alwaysStops: () => modelConfig('always-stops', 'always-stops.gguf'),
  missing: () => modelConfig('missing', 'missing.gguf'),
  corrupt: () => modelConfig('corrupt', 'corrupt.gguf'),
};

function call(model: LlamaCppModelConfig, signal = new AbortController().signal): ProviderCall {
  return { model, signal, requestId: 'req_test' };
}

function chatRequest(extra: Partial<ChatCompletionRequest> = {}): ChatCompletionRequest {
  return { model: 'tiny', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'hello world' }], seed: 7, max_tokens: 12, ...extra };
}

beforeAll(async () => {
  await writeTinyGguf(join(directory, 'tiny.gguf'), { seed: 42 });
  await writeTinyGguf(join(directory, 'never-stops.gguf'), { seed: 42, logitBias: { [TINY_TOKEN_IDS.eos]: -30, [TINY_TOKEN_IDS.imEnd]: -30 } });
  await writeTinyGguf(join(directory, 'always-stops.gguf'), { seed: 42, logitBias: { [TINY_TOKEN_IDS.eos]: 30, [TINY_TOKEN_IDS.imEnd]: 30 } });
  writeFileSync(join(directory, 'corrupt.gguf'), 'GGUF but not really a model file');
  provider = createLlamaCppProvider({ models: Object.values(models).map((model) => model()) });
});
afterAll(async () => {
  await provider?.close();
  rmSync(directory, { recursive: true, force: true });
});

describe('llama-cpp provider: chat', () => {
  it('loads the model on first use and answers', async () => {
    expect(provider.isLoaded('tiny')).toBe(false);
    const result = await provider.chat(chatRequest(), call(models.tiny()));
    expect(provider.isLoaded('tiny')).toBe(true);
    expect(result.choices).toHaveLength(1);
    expect(result.choices[0]?.message.role).toBe('assistant');
    expect(typeof result.choices[0]?.message.content).toBe('string');
    expect(result.usage.prompt_tokens).toBeGreaterThan(5);
    expect(result.usage.completion_tokens).toBeGreaterThan(0);
    expect(result.usage.completion_tokens).toBeLessThanOrEqual(12);
    expect(result.usage.total_tokens).toBe(result.usage.prompt_tokens + result.usage.completion_tokens);
  });

  it('streams text deltas that concatenate to the non-streamed text for the same seed', async () => {
    const whole = await provider.chat(chatRequest({ max_tokens: 20 }), call(models.neverStops()));
    const parts = await collectParts(provider.streamChat(chatRequest({ max_tokens: 20 }), call(models.neverStops())));
    const deltas = parts.filter((part) => part.type === 'text-delta');
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.map((part) => part.text).join('')).toBe(whole.choices[0]?.message.content);
    expect(parts.at(-2)).toEqual({ type: 'finish', choice: 0, reason: 'length' });
    expect(parts.at(-1)).toEqual({ type: 'usage', usage: whole.usage });
  });

  it('finishes with length at max_tokens on a model that never stops', async () => {
    const result = await provider.chat(chatRequest({ max_tokens: 5 }), call(models.neverStops()));
    expect(result.choices[0]?.finishReason).toBe('length');
    expect(result.usage.completion_tokens).toBe(5);
  });

  it('finishes with stop on a model that stops at once', async () => {
    const result = await provider.chat(chatRequest(), call(models.alwaysStops()));
    expect(result.choices[0]?.finishReason).toBe('stop');
    expect(result.choices[0]?.message.content).toBe('');
  });

  it('gives n choices, generated as parallel sequences', async () => {
    const model = models.neverStops();
    const result = await provider.chat(chatRequest({ n: 2, max_tokens: 4 }), call(model));
    expect(result.choices.map((choice) => choice.index)).toEqual([0, 1]);
    expect(result.usage.completion_tokens).toBe(8);
    // The prompt is counted once, as OpenAI does.
    const single = await provider.chat(chatRequest({ max_tokens: 4 }), call(model));
    expect(result.usage.prompt_tokens).toBe(single.usage.prompt_tokens);
    // Streamed, the choices' deltas interleave: both run at once.
    const parts = await collectParts(provider.streamChat(chatRequest({ n: 2, max_tokens: 30 }), call(model)));
    const order = parts.flatMap((part) => (part.type === 'text-delta' ? [part.choice] : []));
    const firstOfSecond = order.indexOf(1);
    expect(firstOfSecond).toBeGreaterThan(-1);
    expect(order.lastIndexOf(0)).toBeGreaterThan(firstOfSecond);
    expect(parts.filter((part) => part.type === 'finish')).toHaveLength(2);
    expect(parts.at(-1)).toMatchObject({ type: 'usage', usage: { completion_tokens: 60 } });
  });

  it('reports logprobs and top_logprobs, streamed and not', async () => {
    const model = models.neverStops();
    const result = await provider.chat(chatRequest({ logprobs: true, top_logprobs: 3, max_tokens: 6, temperature: 0 }), call(model));
    const content = result.choices[0]!.logprobs!.content!;
    expect(content).toHaveLength(6);
    expect(content.map((entry) => entry.token).join('')).toBe(result.choices[0]!.message.content);
    for (const entry of content) {
      expect(entry.logprob).toBeLessThanOrEqual(0);
      expect(entry.top_logprobs).toHaveLength(3);
      // Greedy: the chosen token is the most likely one.
      expect(entry.top_logprobs[0]!.logprob).toBeCloseTo(entry.logprob, 5);
      expect(entry.bytes).toEqual([...Buffer.from(entry.token)]);
    }
    const parts = await collectParts(provider.streamChat(chatRequest({ logprobs: true, top_logprobs: 3, max_tokens: 6, temperature: 0 }), call(model)));
    const streamed = parts.flatMap((part) => (part.type === 'text-delta' ? ((part.logprobs as { content: unknown[] } | undefined)?.content ?? []) : []));
    expect(streamed).toEqual(content);
    const completion = await provider.complete({ model: 'never-stops', prompt: 'hello', max_tokens: 5, logprobs: 2, temperature: 0 }, call(model));
    const legacy = completion.choices[0]!.logprobs!;
    expect(legacy.tokens).toHaveLength(5);
    expect(legacy.tokens.join('')).toBe(completion.choices[0]!.text);
    expect(legacy.top_logprobs?.every((top) => top !== null && Object.keys(top).length <= 2)).toBe(true);
    await expect(provider.complete({ model: 'never-stops', prompt: 'hello', logprobs: 2, echo: true }, call(model))).rejects.toMatchObject({ status: 400, param: 'logprobs' });
  });

  it('frees the sequence when a stream is aborted, so later requests work', async () => {
    const controller = new AbortController();
    const model = models.neverStops();
    const iterator = provider.streamChat(chatRequest({ max_tokens: 200 }), call(model, controller.signal))[Symbol.asyncIterator]();
    expect((await iterator.next()).value).toMatchObject({ type: 'text-delta' });
    controller.abort(new Error('client went away'));
    await expect(async () => {
      for (let step = await iterator.next(); !step.done; step = await iterator.next());
    }).rejects.toThrow();
    // A consumer leaving early (break) also frees it.
    for await (const part of provider.streamChat(chatRequest({ max_tokens: 200 }), call(model))) {
      expect(part.type).toBe('text-delta');
      break;
    }
    // parallel is 2: three requests in a row only succeed if both sequences came back.
    const results = await Promise.all([1, 2, 3].map(() => provider.chat(chatRequest({ max_tokens: 3 }), call(model))));
    expect(results.map((result) => result.choices[0]?.finishReason)).toEqual(['length', 'length', 'length']);
  });

  it('serves concurrent requests (more than the sequences, via the queue)', async () => {
    const model = models.tiny();
    const seeds = [1, 2, 3];
    const results = await Promise.all(seeds.map((seed) => provider.chat(chatRequest({ seed, max_tokens: 6 }), call(model))));
    for (const result of results) expect(result.usage.completion_tokens).toBeGreaterThan(0);
    const again = await provider.chat(chatRequest({ seed: 1, max_tokens: 6 }), call(model));
    expect(again.choices[0]?.message.content).toBe(results[0]?.choices[0]?.message.content);
  });

  it('honours stop sequences (the stop text is not returned)', async () => {
    const free = await provider.chat(chatRequest({ max_tokens: 30 }), call(models.neverStops()));
    const text = free.choices[0]?.message.content ?? '';
    const stop = text.slice(8, 10);
    expect(stop).toHaveLength(2);
    const stopped = await provider.chat(chatRequest({ max_tokens: 30, stop: [stop] }), call(models.neverStops()));
    expect(stopped.choices[0]?.finishReason).toBe('stop');
    expect(stopped.choices[0]?.message.content).toBe(text.slice(0, text.indexOf(stop)));
  });
});

describe('llama-cpp provider: refusals and errors', () => {
  it('refuses images with a 400', async () => {
    const model = models.tiny();
    const image = chatRequest({ messages: [{ role: 'user', content: [{ type: 'text', text: 'what?' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AA==' } }] }] });
    await expect(provider.chat(image, call(model))).rejects.toMatchObject({ status: 400, param: 'messages[0].content[1].type' });
    await expect(collectParts(provider.streamChat(image, call(model)))).rejects.toMatchObject({ status: 400, param: 'messages[0].content[1].type' });
  });

  it('refuses a prompt plus max_tokens larger than the context', async () => {
    await expect(provider.chat(chatRequest({ max_tokens: 1000 }), call(models.tiny()))).rejects.toMatchObject({ status: 400, code: 'context_length_exceeded' });
  });

  it('reports a missing model file clearly', async () => {
    const error = await provider.chat(chatRequest(), call(models.missing())).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(GatewayError);
    expect(error).toMatchObject({ status: 503, type: 'server_error', code: 'model_load_failed' });
    expect((error as Error).message).toContain(join(directory, 'missing.gguf'));
    expect((error as Error).message).toContain('no such file');
    expect((error as Error).message).not.toMatch(/\n\s+at /);
  });

  it('reports a corrupt model file clearly', async () => {
    const error = await provider.chat(chatRequest(), call(models.corrupt())).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ status: 503, code: 'model_load_failed' });
    expect((error as Error).message).toContain(join(directory, 'corrupt.gguf'));
  });
});

describe('llama-cpp provider: model lifetime', () => {
  it('preloads, and unloads after idle_unload_seconds, reloading on the next request', async () => {
    const model = modelConfig('lifetime', 'tiny.gguf', { preload: true, idle_unload_seconds: 1, parallel: 1 });
    const own = createLlamaCppProvider({ models: [model] });
    try {
      await own.preloaded;
      expect(own.isLoaded('lifetime')).toBe(true);
      await own.chat(chatRequest({ max_tokens: 2 }), call(model));
      await new Promise((resolve) => setTimeout(resolve, 1300));
      expect(own.isLoaded('lifetime')).toBe(false);
      const again = await own.chat(chatRequest({ max_tokens: 2 }), call(model));
      expect(again.usage.completion_tokens).toBeGreaterThan(0);
    } finally {
      await own.close();
    }
  });
});

describe('llama-cpp provider: legacy completions', () => {
  it('completes a prompt, streamed the same', async () => {
    const request = { model: 'never-stops', prompt: 'the answer is', max_tokens: 8, seed: 3 };
    const whole = await provider.complete(request, call(models.neverStops()));
    expect(whole.choices[0]?.finishReason).toBe('length');
    expect(whole.usage.completion_tokens).toBe(8);
    expect(whole.usage.prompt_tokens).toBeGreaterThan(1);
    const parts = await collectParts(provider.streamComplete(request, call(models.neverStops())));
    const text = parts.flatMap((part) => (part.type === 'text-delta' ? [part.text] : [])).join('');
    expect(text).toBe(whole.choices[0]?.text);
    expect(parts.at(-1)).toMatchObject({ type: 'usage', usage: whole.usage });
  });

  it('stops on a model that stops at once', async () => {
    const result = await provider.complete({ model: 'always-stops', prompt: 'hello' }, call(models.alwaysStops()));
    expect(result.choices[0]?.finishReason).toBe('stop');
  });
});
