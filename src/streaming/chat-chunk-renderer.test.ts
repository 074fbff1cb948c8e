import { describe, expect, it } from 'vitest';
import { ChatChunkRenderer } from './chat-chunk-renderer.js';

function events(text: string): Array<Record<string, any>> {
  return text
    .split('\n\n')
    .filter(Boolean)
    .map((event) => JSON.parse(event.replace(/^data: /, '')));
}

const identity = () => ({ id: 'chatcmpl-1', created: 100, model: 'm', systemFingerprint: null });

describe('ChatChunkRenderer', () => {
  it('opens a choice with a role delta, then content, then an empty finish delta', () => {
    const renderer = new ChatChunkRenderer(identity(), false);
    const text =
      renderer.render({ type: 'text-delta', choice: 0, text: 'Hi' }) +
      renderer.render({ type: 'text-delta', choice: 0, text: ' there' }) +
      renderer.render({ type: 'finish', choice: 0, reason: 'stop' }) +
      renderer.end();
    const chunks = events(text);
    expect(chunks.map((chunk) => chunk.choices[0].delta)).toEqual([{ role: 'assistant', content: '', refusal: null }, { content: 'Hi' }, { content: ' there' }, {}]);
    expect(chunks.map((chunk) => chunk.choices[0].finish_reason)).toEqual([null, null, null, 'stop']);
    expect(new Set(chunks.map((chunk) => `${chunk.id}/${chunk.created}`)).size).toBe(1);
    expect(chunks.every((chunk) => chunk.object === 'chat.completion.chunk' && !('usage' in chunk))).toBe(true);
  });

  it('puts usage: null on every chunk and a final usage chunk when asked', () => {
    const renderer = new ChatChunkRenderer(identity(), true);
    const usage = { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 };
    const text =
      renderer.render({ type: 'text-delta', choice: 0, text: 'x' }) +
      renderer.render({ type: 'finish', choice: 0, reason: 'length' }) +
      renderer.render({ type: 'usage', usage }) +
      renderer.end();
    const chunks = events(text);
    expect(chunks.slice(0, -1).every((chunk) => chunk.usage === null)).toBe(true);
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage });
  });

  it('sends a tool call id and name on the first fragment only', () => {
    const renderer = new ChatChunkRenderer(identity(), false);
    const text =
      renderer.render({ type: 'tool-call-delta', choice: 0, index: 0, id: 'call_a', name: 'f', argumentsDelta: '' }) +
      renderer.render({ type: 'tool-call-delta', choice: 0, index: 0, argumentsDelta: '{"a":' }) +
      renderer.render({ type: 'tool-call-delta', choice: 0, index: 0, argumentsDelta: '1}' }) +
      renderer.render({ type: 'finish', choice: 0, reason: 'tool_calls' });
    const deltas = events(text).map((chunk) => chunk.choices[0].delta);
    expect(deltas[0]).toEqual({ role: 'assistant', content: null, tool_calls: [{ index: 0, id: 'call_a', type: 'function', function: { name: 'f', arguments: '' } }] });
    expect(deltas[1]).toEqual({ tool_calls: [{ index: 0, function: { arguments: '{"a":' } }] });
    expect(deltas[3]).toEqual({});
  });

  it('finishes each choice once and closes choices left open', () => {
    const renderer = new ChatChunkRenderer(identity(), false);
    let text = renderer.render({ type: 'text-delta', choice: 0, text: 'a' }) + renderer.render({ type: 'text-delta', choice: 1, text: 'b' });
    text += renderer.render({ type: 'finish', choice: 0, reason: 'stop' }) + renderer.render({ type: 'finish', choice: 0, reason: 'stop' });
    text += renderer.end();
    const finishes = events(text).filter((chunk) => chunk.choices[0].finish_reason);
    expect(finishes.map((chunk) => chunk.choices[0].index)).toEqual([0, 1]);
  });
});

describe('ChatChunkRenderer role openings', () => {
  it('opens a choice on a role part once, with the upstream content value', () => {
    const renderer = new ChatChunkRenderer(identity(), false);
    const text =
      renderer.render({ type: 'role', choice: 0, content: null }) +
      renderer.render({ type: 'tool-call-delta', choice: 0, index: 0, id: 'call_a', name: 'f', argumentsDelta: '{}' }) +
      renderer.render({ type: 'role', choice: 0, content: '' });
    const deltas = events(text).map((chunk) => chunk.choices[0].delta);
    expect(deltas).toEqual([
      { role: 'assistant', content: null },
      { tool_calls: [{ index: 0, id: 'call_a', type: 'function', function: { name: 'f', arguments: '{}' } }] },
    ]);
  });
});
