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

  it('refuses images and tool messages with a 400', () => {
    expect(() =>
      toChatHistory([{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://x/y.png' } }] }]),
    ).toThrow(expect.objectContaining({ status: 400, param: 'messages[0].content[0].type', message: expect.stringContaining('images') }));
    expect(() => toChatHistory([{ role: 'tool', content: '1', tool_call_id: 'c' }])).toThrow(expect.objectContaining({ status: 400 }));
  });
});

describe('checkChatSupported', () => {
  const base: ChatCompletionRequest = { model: 'm', messages: [{ role: 'user', content: 'json' }] };
  it('allows tools with tool_choice none, refuses them otherwise', () => {
    const tools = [{ type: 'function' as const, function: { name: 'f' } }];
    expect(() => checkChatSupported({ ...base, tools, tool_choice: 'none' })).not.toThrow();
    expect(() => checkChatSupported({ ...base, tools })).toThrow(expect.objectContaining({ param: 'tools', type: 'invalid_request_error' }));
    expect(() => checkChatSupported({ ...base, response_format: { type: 'json_schema', json_schema: { name: 's' } } })).not.toThrow();
    expect(() => checkChatSupported({ ...base, response_format: { type: 'json_object' } })).not.toThrow();
    expect(() => checkChatSupported({ ...base, response_format: { type: 'text' } })).not.toThrow();
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
    expect(samplingOptions({}, 0)).toEqual({ temperature: 1, repeatPenalty: false });
    expect(finishReason('eogToken')).toBe('stop');
    expect(finishReason('stopGenerationTrigger')).toBe('stop');
    expect(finishReason('customStopTrigger')).toBe('stop');
    expect(finishReason('maxTokens')).toBe('length');
  });
});
