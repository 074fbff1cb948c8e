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
      '  - name: tiny-tools',
      '    provider: llama-cpp',
      `    path: ${JSON.stringify(path)}`,
      '    threads: 1',
      '    context_size: 2048',
      '    parallel: 2',
      '    gpu_layers: 0',
      '  - name: tiny-busy',
      '    provider: llama-cpp',
      `    path: ${JSON.stringify(path)}`,
      '    threads: 1',
      '    context_size: 256',
      '    parallel: 1',
      '    max_queue: 0',
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
    expect(page.data.map((model) => model.id)).toEqual(['tiny-llama', 'tiny-tools', 'tiny-busy']);
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

  it('call tools: forced calls with schema-valid arguments, streamed as tool-call deltas, then a text answer after the results', async () => {
    const tools: OpenAI.ChatCompletionTool[] = [
      {
        type: 'function',
        function: {
          name: 'get_weather',
          description: 'Weather of a city',
          parameters: {
            type: 'object',
            properties: { city: { type: 'string', maxLength: 10 }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
            required: ['city', 'unit'],
            additionalProperties: false,
          },
        },
      },
    ];
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Weather in Paris?' }];
    const forced = await client.chat.completions.create({ model: 'tiny-tools', messages, tools, tool_choice: 'required', seed: 3, max_tokens: 100 });
    const call = forced.choices[0]!.message.tool_calls![0]!;
    expect(forced.choices[0]!.finish_reason).toBe('tool_calls');
    expect(call.type).toBe('function');
    if (call.type !== 'function') return;
    expect(call.function.name).toBe('get_weather');
    const args = JSON.parse(call.function.arguments) as { city: string; unit: string };
    expect(['celsius', 'fahrenheit']).toContain(args.unit);
    expect(args.city.length).toBeLessThanOrEqual(10);

    const stream = await client.chat.completions.create({
      model: 'tiny-tools',
      messages,
      tools,
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      seed: 3,
      max_tokens: 100,
      stream: true,
    });
    const deltas: OpenAI.ChatCompletionChunk.Choice.Delta.ToolCall[] = [];
    let finishReason: string | null = null;
    for await (const chunk of stream) {
      deltas.push(...(chunk.choices[0]?.delta.tool_calls ?? []));
      finishReason = chunk.choices[0]?.finish_reason ?? finishReason;
    }
    expect(deltas[0]).toMatchObject({ index: 0, id: expect.stringMatching(/^call_/), type: 'function', function: { name: 'get_weather', arguments: '' } });
    expect(deltas.slice(1).every((delta) => delta.id === undefined)).toBe(true);
    expect(JSON.parse(deltas.map((delta) => delta.function?.arguments ?? '').join(''))).toEqual(args);
    expect(finishReason).toBe('tool_calls');

    const answer = await client.chat.completions.create({
      model: 'tiny-tools',
      messages: [...messages, forced.choices[0]!.message, { role: 'tool', tool_call_id: call.id, content: '{"temperature": 21}' }],
      tools,
      max_tokens: 5,
    });
    expect(typeof answer.choices[0]!.message.content).toBe('string');
  });

  it('report logprobs', async () => {
    const completion = await client.chat.completions.create({
      model: 'tiny-llama',
      messages: [{ role: 'user', content: 'hello' }],
      max_tokens: 4,
      logprobs: true,
      top_logprobs: 2,
      temperature: 0,
    });
    const content = completion.choices[0]!.logprobs!.content!;
    expect(content).toHaveLength(4);
    expect(content.every((entry) => entry.logprob <= 0 && entry.top_logprobs.length === 2)).toBe(true);
    expect(content.map((entry) => entry.token).join('')).toBe(completion.choices[0]!.message.content);
  });

  it('answer 429 model_overloaded with retry-after when every sequence is busy and the queue is full', async () => {
    const noRetries = chatgate.client({ maxRetries: 0 });
    const busy = await noRetries.chat.completions.create({ model: 'tiny-busy', messages: [{ role: 'user', content: 'go' }], max_tokens: 200, stream: true });
    const iterator = busy[Symbol.asyncIterator]();
    await iterator.next();
    const refused = await noRetries.chat.completions.create({ model: 'tiny-busy', messages: [{ role: 'user', content: 'me too' }], max_tokens: 2 }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(OpenAI.RateLimitError);
    expect(refused).toMatchObject({ status: 429, code: 'model_overloaded' });
    expect((refused as InstanceType<typeof OpenAI.RateLimitError>).headers.get('retry-after')).toMatch(/^\d+$/);
    busy.controller.abort();
    await iterator.return?.();
    // The sequence is free again.
    const after = await client.chat.completions.create({ model: 'tiny-busy', messages: [{ role: 'user', content: 'now' }], max_tokens: 2 });
    expect(after.choices).toHaveLength(1);
  });
});
