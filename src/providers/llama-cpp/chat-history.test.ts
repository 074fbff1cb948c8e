import { describe, expect, it } from 'vitest';
import type { ChatCompletionRequest } from '../../openai/chat-completion-request.js';
import { checkChatSupported, toChatHistory } from './chat-history.js';
import { finishReason, samplingOptions } from './generation-options.js';

describe('toChatHistory', () => {
  it('maps roles and joins text parts', () => {
    expect(
      toChatHistory([
        { role: 'system', content: 'Be brief.' },
        { role: 'developer', content: [{ type: 'text', text: 'Use ' }, { type: 'text', text: 'French.' }] },
        { role: 'user', content: [{ type: 'text', text: 'Hi' }] },
        { role: 'assistant', content: 'Salut' },
        { role: 'user', content: 'Again' },
      ]),
    ).toEqual([
      { type: 'system', text: 'Be brief.\n\nUse French.' },
      { type: 'user', text: 'Hi' },
      { type: 'model', response: ['Salut'] },
      { type: 'user', text: 'Again' },
    ]);
  });

  it('refuses images with a 400', () => {
    expect(() =>
      toChatHistory([{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://x/y.png' } }] }]),
    ).toThrow(expect.objectContaining({ status: 400, param: 'messages[0].content[0].type', message: expect.stringContaining('images') }));
  });

  it('folds tool results into the calls they answer', () => {
    expect(
      toChatHistory([
        { role: 'user', content: 'Weather in Paris and Rome?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'c1', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } },
            { id: 'c2', type: 'function', function: { name: 'weather', arguments: 'not json' } },
          ],
        },
        { role: 'tool', tool_call_id: 'c2', content: 'rainy' },
        { role: 'tool', tool_call_id: 'c1', content: [{ type: 'text', text: '{"sky":"clear"}' }] },
      ]),
    ).toEqual([
      { type: 'user', text: 'Weather in Paris and Rome?' },
      {
        type: 'model',
        response: [
          { type: 'functionCall', name: 'weather', params: { city: 'Paris' }, result: { sky: 'clear' } },
          { type: 'functionCall', name: 'weather', params: 'not json', result: 'rainy' },
        ],
      },
    ]);
  });

  it('folds a legacy function result into its call', () => {
    expect(
      toChatHistory([
        { role: 'user', content: 'Time?' },
        { role: 'assistant', content: 'Checking.', function_call: { name: 'now', arguments: '{}' } },
        { role: 'function', name: 'now', content: '12:00' },
        { role: 'assistant', content: 'Noon.' },
      ]),
    ).toEqual([
      { type: 'user', text: 'Time?' },
      { type: 'model', response: ['Checking.', { type: 'functionCall', name: 'now', params: {}, result: '12:00' }] },
      { type: 'model', response: ['Noon.'] },
    ]);
  });
});

describe('checkChatSupported', () => {
  const base: ChatCompletionRequest = { model: 'm', messages: [{ role: 'user', content: 'json' }] };
  it('refuses logprobs with function calling', () => {
    const tools = [{ type: 'function' as const, function: { name: 'f' } }];
    expect(() => checkChatSupported({ ...base, tools, logprobs: true })).toThrow(expect.objectContaining({ param: 'logprobs', status: 400 }));
    expect(() => checkChatSupported({ ...base, tools, tool_choice: 'none', logprobs: true })).not.toThrow();
    expect(() => checkChatSupported({ ...base, tools })).not.toThrow();
  });
});

describe('generation options', () => {
  it('maps sampling parameters and stop reasons', () => {
    expect(samplingOptions({ temperature: 0.5, top_p: 0.9, seed: 3, stop: 'END' }, 1)).toEqual({
      temperature: 0.5,
      topP: 0.9,
      seed: 4,
      customStopTriggers: ['END'],
      repeatPenalty: false,
    });
    expect(samplingOptions({ presence_penalty: 0.5 }, 0).repeatPenalty).toEqual({ penalty: 1, presencePenalty: 0.5, frequencyPenalty: 0 });
    expect(samplingOptions({}, 0)).toEqual({ temperature: 1, topP: 1, repeatPenalty: false });
    expect(samplingOptions({ top_k: 5, min_p: 0.1, repetition_penalty: 1.2 }, 0)).toMatchObject({ topK: 5, minP: 0.1, repeatPenalty: { penalty: 1.2 } });
    expect(finishReason('eogToken')).toBe('stop');
    expect(finishReason('stopGenerationTrigger')).toBe('stop');
    expect(finishReason('customStopTrigger')).toBe('stop');
    expect(finishReason('maxTokens')).toBe('length');
  });
});
