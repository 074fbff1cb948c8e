import { describe, expect, it } from 'vitest';
import type { StreamPart } from '../spec.js';
import { SseChunkParser } from './sse-chunk-parser.js';

function chatEvent(choices: unknown[], extra: Record<string, unknown> = {}): string {
  return `data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 5, model: 'm', choices, ...extra })}\n\n`;
}

function parse(text: string, kind: 'chat' | 'completion' = 'chat'): { parts: StreamPart[]; parser: SseChunkParser } {
  const parser = new SseChunkParser(kind, 'sk-secret');
  parser.feed(text);
  return { parts: [...parser.parts], parser };
}

describe('SseChunkParser', () => {
  it('opens the choice on a role-only delta, ignores empty deltas, and stops at [DONE]', () => {
    const { parts, parser } = parse(
      chatEvent([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }]) +
        chatEvent([{ index: 0, delta: { content: 'Hi' }, finish_reason: null }]) +
        chatEvent([{ index: 0, delta: { content: null }, finish_reason: null }]) +
        chatEvent([{ index: 0, delta: {}, finish_reason: 'stop' }]) +
        'data: [DONE]\n\n' +
        chatEvent([{ index: 0, delta: { content: 'after the end' }, finish_reason: null }]),
    );
    expect(parser.done).toBe(true);
    expect(parts).toEqual([
      { type: 'metadata', id: 'chatcmpl-1', created: 5, systemFingerprint: undefined, serviceTier: undefined },
      { type: 'role', choice: 0, content: '' },
      { type: 'text-delta', choice: 0, text: 'Hi' },
      { type: 'finish', choice: 0, reason: 'stop' },
    ]);
  });

  it('keeps tool-call ids and names on the first fragment only, even when the upstream repeats them', () => {
    const fragment = (argumentsPiece: string, withName = true): unknown => ({
      index: 0,
      delta: { tool_calls: [{ index: 0, id: 'call_x', type: 'function', function: { ...(withName ? { name: 'f' } : {}), arguments: argumentsPiece } }] },
      finish_reason: null,
    });
    const { parts } = parse(chatEvent([fragment('{"a"')]) + chatEvent([fragment(':1}')]) + chatEvent([fragment('', false)]));
    expect(parts.slice(1)).toEqual([
      { type: 'tool-call-delta', choice: 0, index: 0, id: 'call_x', name: 'f', argumentsDelta: '{"a"' },
      { type: 'tool-call-delta', choice: 0, index: 0, argumentsDelta: ':1}' },
    ]);
  });

  it('makes up a tool-call id when the upstream sends none, and uses positions when indexes are missing', () => {
    const { parts } = parse(chatEvent([{ delta: { tool_calls: [{ function: { name: 'f', arguments: '{}' } }, { function: { name: 'g', arguments: '{}' } }] } }]));
    expect(parts[1]).toMatchObject({ type: 'tool-call-delta', choice: 0, index: 0, name: 'f', argumentsDelta: '{}' });
    expect(parts[2]).toMatchObject({ type: 'tool-call-delta', choice: 0, index: 1, name: 'g' });
    const id = (parts[1] as { id?: string }).id;
    expect(id).toMatch(/^call_[0-9a-f]{32}$/);
    expect((parts[2] as { id?: string }).id).not.toBe(id);
  });

  it('sends a finish once per choice, maps unknown reasons to stop, and sends the last usage once', () => {
    const usage = (completionTokens: number): Record<string, unknown> => ({ usage: { prompt_tokens: 1, completion_tokens: completionTokens, total_tokens: 1 + completionTokens } });
    const { parts, parser } = parse(
      chatEvent([{ index: 0, delta: { content: 'a' }, finish_reason: null }], usage(1)) +
        chatEvent([{ index: 0, delta: { content: 'b' }, finish_reason: 'eos' }], usage(2)) +
        chatEvent([{ index: 0, delta: {}, finish_reason: 'stop' }], usage(2)) +
        chatEvent([], { usage: { prompt_tokens: 1, completion_tokens: 2 } }),
    );
    expect(parser.done).toBe(false);
    expect(parts.filter((part) => part.type === 'finish')).toEqual([{ type: 'finish', choice: 0, reason: 'stop' }]);
    expect(parts.filter((part) => part.type === 'usage')).toEqual([]);
    parser.end();
    expect(parser.failure).toBeUndefined();
    expect(parser.parts.filter((part) => part.type === 'usage')).toEqual([{ type: 'usage', usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } }]);
  });

  it('fails when the body ends before every choice finished', () => {
    const { parser } = parse(
      chatEvent([{ index: 0, delta: { content: 'a' }, finish_reason: 'stop' }]) + chatEvent([{ index: 1, delta: { content: 'b' }, finish_reason: null }]),
    );
    parser.end();
    expect(parser.failure).toMatchObject({ status: 502, code: 'upstream_stream_error' });
  });

  it('parses a last event that lacks its blank line', () => {
    const { parser } = parse(`${chatEvent([{ index: 0, delta: { content: 'a' }, finish_reason: 'stop' }])}data: [DONE]`);
    expect(parser.done).toBe(false);
    parser.end();
    expect(parser.done).toBe(true);
    expect(parser.failure).toBeUndefined();
  });

  it('records malformed JSON and error frames (event: error too), keeping the parts before them', () => {
    const malformed = parse(`${chatEvent([{ index: 0, delta: { content: 'a' } }])}data: {"broken\n\n${chatEvent([{ index: 0, delta: { content: 'b' } }])}`);
    expect(malformed.parts.map((part) => part.type)).toEqual(['metadata', 'text-delta']);
    expect(malformed.parser.failure).toMatchObject({ status: 502, code: 'upstream_stream_error', source: 'upstream' });

    const frame = parse('data: {"error":{"message":"overloaded, key sk-secret","type":"server_error","code":503}}\n\n');
    expect(frame.parser.failure?.message).toBe('Upstream error mid-stream: overloaded, key [redacted]');

    const named = parse('event: error\ndata: {"message":"boom"}\n\n');
    expect(named.parser.failure?.message).toBe('Upstream error mid-stream: boom');
  });

  it('translates legacy completion chunks', () => {
    const logprobs = { tokens: ['Hi'], token_logprobs: [-0.5], top_logprobs: null, text_offset: [0] };
    const { parts } = parse(
      `data: ${JSON.stringify({ id: 'cmpl-1', created: 3, choices: [{ index: 0, text: 'Hi', logprobs, finish_reason: null }] })}\n\n` +
        `data: ${JSON.stringify({ id: 'cmpl-1', created: 3, choices: [{ index: 0, text: '', finish_reason: 'tool_calls' }] })}\n\n`,
      'completion',
    );
    expect(parts.slice(1)).toEqual([
      { type: 'text-delta', choice: 0, text: 'Hi', logprobs },
      { type: 'finish', choice: 0, reason: 'stop' },
    ]);
  });
});
