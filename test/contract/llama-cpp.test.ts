/**
 * The llama-cpp provider through the official `openai` SDK against a real `chatgate serve`,
 * on a tiny random-weight GGUF model (gibberish text, but real llama.cpp inference).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startChatgate, type RunningChatgate } from '../support/start-chatgate.js';
import { TINY_TOKEN_IDS, writeTinyGguf } from '../support/tiny-gguf.js';

const directory = mkdtempSync(join(tmpdir(), 'chatgate-llama-contract-'));
let chatgate: RunningChatgate;
let client: OpenAI;

beforeAll(async () => {
  const path = join(directory, 'tiny.gguf');
  await writeTinyGguf(path, { seed: 42, logitBias: { [TINY_TOKEN_IDS.eos]: -30, [TINY_TOKEN_IDS.imEnd]: -30 } });
  chatgate = await startChatgate({
    config: [
      'models:',
      '  - name: tiny-llama',
      '    provider: llama-cpp',
      `    path: ${JSON.stringify(path)}`,
      '    threads: 1',
      '    context_size: 256',
      '    parallel: 2',
      '    gpu_layers: 0',
      '',
    ].join('\n'),
  });
  client = chatgate.client();
});
afterAll(async () => {
  await chatgate?.stop();
  rmSync(directory, { recursive: true, force: true });
});

describe('llama-cpp models', () => {
  it('are listed', async () => {
    const page = await client.models.list();
    expect(page.data.map((model) => model.id)).toEqual(['tiny-llama']);
  });

  it('answer a chat completion', async () => {
    const completion = await client.chat.completions.create({
      model: 'tiny-llama',
      messages: [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: 'hello world' },
      ],
      max_tokens: 8,
      seed: 1,
    });
    expect(completion.object).toBe('chat.completion');
    expect(completion.model).toBe('tiny-llama');
    expect(typeof completion.choices[0]?.message.content).toBe('string');
    expect(completion.choices[0]?.finish_reason).toBe('length');
    expect(completion.usage?.completion_tokens).toBe(8);
    expect(completion.usage?.prompt_tokens).toBeGreaterThan(5);
  });

  it('stream with usage, the same text as unstreamed for the same seed', async () => {
    const request = { model: 'tiny-llama', messages: [{ role: 'user' as const, content: 'the answer is' }], max_tokens: 10, seed: 5 };
    const whole = await client.chat.completions.create(request);
    const stream = await client.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let finishReason: string | null = null;
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      if (chunk.choices.length === 0) usage = chunk.usage;
      text += chunk.choices[0]?.delta.content ?? '';
      finishReason = chunk.choices[0]?.finish_reason ?? finishReason;
    }
    expect(text).toBe(whole.choices[0]?.message.content);
    expect(finishReason).toBe('length');
    expect(usage).toEqual(whole.usage);
  });

  it('answer a legacy completion', async () => {
    const completion = await client.completions.create({ model: 'tiny-llama', prompt: 'hello', max_tokens: 4, seed: 2 });
    expect(completion.object).toBe('text_completion');
    expect(completion.choices[0]?.finish_reason).toBe('length');
    expect(completion.usage?.completion_tokens).toBe(4);
  });

  it('refuse tools with a 400', async () => {
    const refused = client.chat.completions.create({
      model: 'tiny-llama',
      messages: [{ role: 'user', content: 'weather?' }],
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: {} } } }],
    });
    await expect(refused).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    await expect(refused).rejects.toMatchObject({ status: 400, param: 'tools', type: 'invalid_request_error' });
  });
});
