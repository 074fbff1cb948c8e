import { describe, expect, it } from 'vitest';
import { chatCompletionRequest } from '../../openai/chat-completion-request.js';
import { lastUserText, mentionsName, trailingToolResults } from './conversation-text.js';

const messagesOf = (messages: unknown[]) => chatCompletionRequest.parse({ model: 'mock', messages }).messages;

describe('mentionsName', () => {
  it.each([
    ['use get_weather please', 'get_weather', true],
    ['USE GET_WEATHER', 'get_weather', true],
    ['(get_weather)', 'get_weather', true],
    ['get_weather_forecast', 'get_weather', false],
    ['my_get_weather', 'get_weather', false],
    ['search-engine', 'search', false],
    ['search, then weather.', 'weather', true],
    ['nothing here', 'weather', false],
  ])('%j mentions %j: %s', (text, name, expected) => {
    expect(mentionsName(text, name)).toBe(expected);
  });
});

describe('lastUserText', () => {
  it('falls back to the last message with content when no user message exists', () => {
    expect(lastUserText(messagesOf([{ role: 'system', content: 'system only' }]))).toBe('system only');
    expect(lastUserText(messagesOf([{ role: 'user', content: 'u' }, { role: 'assistant', content: 'a' }]))).toBe('u');
  });
});

describe('trailingToolResults', () => {
  it('is empty unless the conversation ends with tool results, and falls back to the call id for the name', () => {
    expect(trailingToolResults(messagesOf([{ role: 'user', content: 'x' }]))).toEqual([]);
    expect(trailingToolResults(messagesOf([{ role: 'tool', tool_call_id: 'call_x', content: 'r' }]))).toEqual([{ name: 'call_x', content: 'r' }]);
  });
});
