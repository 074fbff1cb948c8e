import { describe, expect, it } from 'vitest';
import type { ChatCompletionRequest } from '../../openai/chat-completion-request.js';
import { streamedAnswerBody, wholeAnswerBody } from './upstream-request-body.js';

const request = { model: 'alias', messages: [{ role: 'user', content: 'hi' }], top_k: 3 } as ChatCompletionRequest;

describe('upstream request bodies', () => {
  it('renames the model in place and keeps unknown fields', () => {
    expect(wholeAnswerBody(request, 'real-model')).toBe('{"model":"real-model","messages":[{"role":"user","content":"hi"}],"top_k":3}');
    expect(request.model).toBe('alias');
  });

  it('turns streaming off for whole answers', () => {
    const body = JSON.parse(wholeAnswerBody({ ...request, stream: true, stream_options: { include_usage: true } }, 'm')) as Record<string, unknown>;
    expect(body['stream']).toBe(false);
    expect(body).not.toHaveProperty('stream_options');
  });

  it('streams with usage, keeping the other stream options', () => {
    expect(JSON.parse(streamedAnswerBody(request, 'm'))).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    const withOptions = { ...request, stream_options: { include_usage: false, continuous_usage_stats: true } } as ChatCompletionRequest;
    expect(JSON.parse(streamedAnswerBody(withOptions, 'm'))).toMatchObject({
      stream_options: { include_usage: true, continuous_usage_stats: true },
    });
  });
});
