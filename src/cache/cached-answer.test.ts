import { describe, expect, it } from 'vitest';
import type { ChatResult, CompletionResult, StreamPart } from '../providers/spec.js';
import { AnswerCollector, hitUsage, isCacheable, parseCachedAnswer, replayParts, type CachedAnswer } from './cached-answer.js';

async function collect(parts: AsyncIterable<StreamPart>): Promise<StreamPart[]> {
  const list: StreamPart[] = [];
  for await (const part of parts) list.push(part);
  return list;
}

const usage = { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 };

const chatResult: ChatResult = {
  systemFingerprint: 'fp_1',
  choices: [
    { index: 0, message: { role: 'assistant', content: 'Hello there, how are you?', refusal: null }, finishReason: 'stop', logprobs: null },
    {
      index: 1,
      message: { role: 'assistant', content: null, refusal: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }] },
      finishReason: 'tool_calls',
      logprobs: null,
    },
    { index: 2, message: { role: 'assistant', content: null, refusal: 'I cannot help with that.' }, finishReason: 'stop', logprobs: null },
  ],
  usage,
};

describe('cached answers', () => {
  it('replay as parts that collect back into the same chat result', async () => {
    const parts = await collect(replayParts({ kind: 'chat', result: chatResult }, usage));
    expect(parts.filter((part) => part.type === 'text-delta').map((part) => (part as { text: string }).text)).toEqual(['Hello ', 'there, ', 'how ', 'are ', 'you?']);
    const collector = new AnswerCollector();
    for (const part of parts) collector.add(part);
    expect(collector.chatResult()).toEqual(chatResult);
  });

  it('replay and collect legacy completions with logprobs', async () => {
    const result: CompletionResult = {
      systemFingerprint: null,
      choices: [{ index: 0, text: 'a b', finishReason: 'length', logprobs: { tokens: ['a', ' b'], token_logprobs: [-1, -2], top_logprobs: null, text_offset: [0, 1] } }],
      usage,
    };
    const collector = new AnswerCollector();
    for (const part of await collect(replayParts({ kind: 'completion', result }, usage))) collector.add(part);
    expect(collector.completionResult()).toEqual(result);
  });

  it('are complete only when every choice finished and usage came', () => {
    const collector = new AnswerCollector();
    collector.add({ type: 'text-delta', choice: 0, text: 'partial' });
    expect(collector.chatResult()).toBeNull();
    collector.add({ type: 'finish', choice: 0, reason: 'stop' });
    expect(collector.chatResult()).toBeNull();
    collector.add({ type: 'usage', usage });
    expect(collector.chatResult()?.choices[0]?.message.content).toBe('partial');
  });

  it('are cached only when successful and complete', () => {
    const answer = (reason: string): CachedAnswer => ({ kind: 'chat', result: { ...chatResult, choices: [{ ...chatResult.choices[0]!, finishReason: reason as 'stop' }] } });
    expect(isCacheable(answer('stop'))).toBe(true);
    expect(isCacheable(answer('length'))).toBe(true);
    expect(isCacheable(answer('tool_calls'))).toBe(true);
    expect(isCacheable(answer('content_filter'))).toBe(false);
    expect(isCacheable({ kind: 'chat', result: { ...chatResult, choices: [] } })).toBe(false);
  });

  it('parse only well-formed entries of the expected kind, and report hit usage as cached', () => {
    const text = JSON.stringify({ kind: 'chat', result: chatResult });
    expect(parseCachedAnswer(text, 'chat')).toEqual({ kind: 'chat', result: chatResult });
    expect(parseCachedAnswer(text, 'completion')).toBeNull();
    expect(parseCachedAnswer('{not json', 'chat')).toBeNull();
    expect(hitUsage(usage)).toEqual({ ...usage, prompt_tokens_details: { cached_tokens: 10 } });
  });
});
