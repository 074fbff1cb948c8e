/**
 * The guide's first examples (hello, streaming, function calling, JSON output) through the
 * official `openai` SDK against a real `chatgate serve` on the built-in mock models.
 */
import { Ajv } from 'ajv';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startChatgate, type RunningChatgate } from '../support/start-chatgate.js';

let chatgate: RunningChatgate;
let client: OpenAI;

beforeAll(async () => {
  chatgate = await startChatgate();
  client = chatgate.client();
});
afterAll(() => chatgate?.stop());

const weatherTool: OpenAI.Chat.Completions.ChatCompletionTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather of a city',
    parameters: {
      type: 'object',
      properties: {
        city: { type: 'string' },
        unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
        days: { type: 'integer', minimum: 1, maximum: 7 },
      },
      required: ['city', 'unit', 'days'],
      additionalProperties: false,
    },
  },
};

describe('built-in models', () => {
  it('lists and retrieves the four model names of the guide', async () => {
    const page = await client.models.list();
    expect(page.data.map((model) => model.id).sort()).toEqual(['gpt-4-2026', 'gpt-4-32k', 'gpt-4-turbo', 'gpt-4-vision']);
    const model = await client.models.retrieve('gpt-4-turbo');
    expect(model).toMatchObject({ id: 'gpt-4-turbo', object: 'model' });
    await expect(client.models.retrieve('gpt-5-imaginary')).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });

  it('says at start-up that the mock serves them', () => {
    expect(chatgate.output()).toMatch(/mock provider/);
  });
});

describe('chat completions', () => {
  it('answers hello', async () => {
    const completion = await client.chat.completions.create({
      model: 'gpt-4-2026',
      messages: [
        { role: 'system', content: 'You are a helpful assistant.' },
        { role: 'user', content: 'Hello, who are you?' },
      ],
    });
    expect(completion.object).toBe('chat.completion');
    expect(completion.id).toMatch(/^chatcmpl-/);
    expect(completion.model).toBe('gpt-4-2026');
    expect(completion.choices[0]?.message.role).toBe('assistant');
    expect(completion.choices[0]?.message.content).toBe('Hello, who are you?');
    expect(completion.choices[0]?.finish_reason).toBe('stop');
    expect(completion.usage?.prompt_tokens).toBeGreaterThan(5);
    expect(completion.usage?.completion_tokens).toBeGreaterThan(0);
    expect(completion.usage?.total_tokens).toBe((completion.usage?.prompt_tokens ?? 0) + (completion.usage?.completion_tokens ?? 0));
  });

  it('streams with usage', async () => {
    const stream = await client.chat.completions.create({
      model: 'gpt-4-turbo',
      messages: [{ role: 'user', content: 'Tell me a story about a brave little gateway' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    const ids = new Set<string>();
    let finishReason: string | null = null;
    let usage: OpenAI.CompletionUsage | null | undefined;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      ids.add(chunk.id);
      expect(chunk.object).toBe('chat.completion.chunk');
      if (chunk.choices.length === 0) usage = chunk.usage;
      else {
        expect(chunk.usage).toBeNull();
        text += chunk.choices[0]?.delta.content ?? '';
        finishReason = chunk.choices[0]?.finish_reason ?? finishReason;
      }
    }
    expect(chunks).toBeGreaterThan(4);
    expect(ids.size).toBe(1);
    expect(text).toBe('Tell me a story about a brave little gateway');
    expect(finishReason).toBe('stop');
    expect(usage?.completion_tokens).toBeGreaterThan(0);
  });

  it('frames the raw stream as OpenAI does', async () => {
    const response = await fetch(`${chatgate.url}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${chatgate.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4-turbo', messages: [{ role: 'user', content: 'one two' }], stream: true }),
    });
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(response.headers.get('x-request-id')).toMatch(/^req_/);
    expect(response.headers.get('openai-version')).toBe('2020-10-01');
    expect(Number(response.headers.get('openai-processing-ms'))).toBeGreaterThanOrEqual(0);
    const body = await response.text();
    const events = body.split('\n\n').filter(Boolean);
    expect(events.at(-1)).toBe('data: [DONE]');
    const chunks = events.slice(0, -1).map((event) => JSON.parse(event.replace(/^data: /, '')));
    expect(chunks[0].choices[0].delta).toEqual({ role: 'assistant', content: '', refusal: null });
    const finishes = chunks.filter((chunk) => chunk.choices[0]?.finish_reason);
    expect(finishes).toHaveLength(1);
    expect(finishes[0].choices[0].delta).toEqual({});
    expect(chunks.every((chunk) => !('usage' in chunk))).toBe(true);
  });

  it('calls a required tool with arguments valid for its schema', async () => {
    const completion = await client.chat.completions.create({
      model: 'gpt-4-turbo',
      messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
      tools: [weatherTool],
      tool_choice: 'required',
    });
    const choice = completion.choices[0]!;
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.content).toBeNull();
    const call = choice.message.tool_calls?.[0];
    expect(call?.type).toBe('function');
    if (call?.type !== 'function') throw new Error('expected a function call');
    expect(call.id).toMatch(/^call_/);
    expect(call.function.name).toBe('get_weather');
    const validate = new Ajv({ strict: false }).compile(weatherTool.function.parameters!);
    expect(validate(JSON.parse(call.function.arguments))).toBe(true);

    // The tool result goes back and the model answers with text.
    const followUp = await client.chat.completions.create({
      model: 'gpt-4-turbo',
      messages: [
        { role: 'user', content: 'What is the weather in Paris?' },
        choice.message,
        { role: 'tool', tool_call_id: call.id, content: '{"temperature": 21}' },
      ],
      tools: [weatherTool],
    });
    expect(followUp.choices[0]?.finish_reason).toBe('stop');
    expect(followUp.choices[0]?.message.content).toContain('21');
  });

  it('streams a named tool call as proper deltas', async () => {
    const stream = client.chat.completions.stream({
      model: 'gpt-4-turbo',
      messages: [{ role: 'user', content: 'Weather in Oslo?' }],
      tools: [weatherTool],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
    });
    const final = await stream.finalChatCompletion();
    const call = final.choices[0]?.message.tool_calls?.[0];
    if (call?.type !== 'function') throw new Error('expected a function call');
    expect(final.choices[0]?.finish_reason).toBe('tool_calls');
    expect(call.function.name).toBe('get_weather');
    expect(JSON.parse(call.function.arguments)).toHaveProperty('city');
  });

  it('returns a valid instance for a strict json_schema', async () => {
    const schema = {
      type: 'object',
      properties: {
        title: { type: 'string' },
        tags: { type: 'array', items: { type: 'string' } },
        rating: { type: 'number', minimum: 0, maximum: 5 },
        status: { type: ['string', 'null'], enum: ['draft', 'final', null] },
      },
      required: ['title', 'tags', 'rating', 'status'],
      additionalProperties: false,
    };
    const completion = await client.chat.completions.create({
      model: 'gpt-4-2026',
      messages: [{ role: 'user', content: 'Summarize: gateways are great' }],
      response_format: { type: 'json_schema', json_schema: { name: 'summary', strict: true, schema } },
    });
    const content = completion.choices[0]?.message.content ?? '';
    expect(new Ajv({ strict: false }).compile(schema)(JSON.parse(content))).toBe(true);
  });

  it('answers json_object with a JSON object', async () => {
    const completion = await client.chat.completions.create({
      model: 'gpt-4-2026',
      messages: [{ role: 'user', content: 'Reply in json please' }],
      response_format: { type: 'json_object' },
    });
    expect(typeof JSON.parse(completion.choices[0]?.message.content ?? '')).toBe('object');
  });

  it('gives n=2 choices, streamed too', async () => {
    const completion = await client.chat.completions.create({ model: 'gpt-4-2026', messages: [{ role: 'user', content: 'two please' }], n: 2 });
    expect(completion.choices.map((choice) => choice.index)).toEqual([0, 1]);
    const stream = await client.chat.completions.create({ model: 'gpt-4-2026', messages: [{ role: 'user', content: 'two please' }], n: 2, stream: true });
    const texts = ['', ''];
    const finished = [0, 0];
    for await (const chunk of stream) {
      for (const choice of chunk.choices) {
        texts[choice.index] += choice.delta.content ?? '';
        if (choice.finish_reason) finished[choice.index]!++;
      }
    }
    expect(texts).toEqual(['two please', 'two please']);
    expect(finished).toEqual([1, 1]);
  });

  it('honours max_tokens and stop', async () => {
    const cut = await client.chat.completions.create({
      model: 'gpt-4-2026',
      messages: [{ role: 'user', content: 'one two three four five six seven eight' }],
      max_tokens: 3,
    });
    expect(cut.choices[0]?.finish_reason).toBe('length');
    expect(cut.usage?.completion_tokens).toBe(3);
    const stopped = await client.chat.completions.create({
      model: 'gpt-4-2026',
      messages: [{ role: 'user', content: 'alpha beta STOP gamma' }],
      stop: ['STOP'],
    });
    expect(stopped.choices[0]?.message.content).toBe('alpha beta ');
    expect(stopped.choices[0]?.finish_reason).toBe('stop');
  });

  it('accepts image parts on a vision model and refuses them where the model has none', async () => {
    const content: OpenAI.Chat.Completions.ChatCompletionContentPart[] = [
      { type: 'text', text: 'What is in this image?' },
      { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
    ];
    const answer = await client.chat.completions.create({ model: 'gpt-4-vision', messages: [{ role: 'user', content }] });
    expect(answer.choices[0]?.message.content).toContain('What is in this image?');
    const refused = client.chat.completions.create({ model: 'gpt-4-32k', messages: [{ role: 'user', content }] });
    await expect(refused).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    await expect(refused).rejects.toMatchObject({ status: 400, param: 'messages[0].content[1].type', code: 'image_input_not_supported' });
  });

  it('maps legacy functions onto a function_call answer', async () => {
    const completion = await client.chat.completions.create({
      model: 'gpt-4-2026',
      messages: [{ role: 'user', content: 'weather in Rome' }],
      functions: [weatherTool.function],
      function_call: { name: 'get_weather' },
    });
    expect(completion.choices[0]?.finish_reason).toBe('function_call');
    expect(completion.choices[0]?.message.function_call?.name).toBe('get_weather');
  });

  it('returns logprobs when asked', async () => {
    const completion = await client.chat.completions.create({
      model: 'gpt-4-2026',
      messages: [{ role: 'user', content: 'hello world' }],
      logprobs: true,
      top_logprobs: 2,
    });
    const tokens = completion.choices[0]?.logprobs?.content ?? [];
    expect(tokens.length).toBeGreaterThan(0);
    expect(tokens.map((token) => token.token).join('')).toBe('hello world');
    expect(tokens[0]?.top_logprobs).toHaveLength(2);
  });
});

describe('legacy completions', () => {
  it('completes a prompt, streamed and not', async () => {
    const completion = await client.completions.create({ model: 'gpt-4-2026', prompt: 'Say this is a test', max_tokens: 50 });
    expect(completion.object).toBe('text_completion');
    expect(completion.choices[0]?.text.length).toBeGreaterThan(0);
    const stream = await client.completions.create({ model: 'gpt-4-2026', prompt: 'Say this is a test', max_tokens: 50, stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
    expect(text).toBe(completion.choices[0]?.text);
    const many = await client.completions.create({ model: 'gpt-4-2026', prompt: ['first', 'second'] });
    expect(many.choices).toHaveLength(2);
  });
});
