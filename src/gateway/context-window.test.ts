import { describe, expect, it } from 'vitest';
import { modelConfig, type ModelConfig } from '../config/schema.js';
import { GatewayError } from '../errors/gateway-error.js';
import { chatCompletionRequest } from '../openai/chat-completion-request.js';
import { completionRequest } from '../openai/completion-request.js';
import { TokenCounters } from '../tokens/token-counter.js';
import { checkChatContextWindow, checkCompletionContextWindow, checkEmbeddingContextWindow } from './context-window.js';

const model = modelConfig.parse({ name: 'm', provider: 'mock', context_window: 1_000 }) as ModelConfig;
const counters = new TokenCounters();

async function refusal(check: Promise<void>): Promise<GatewayError> {
  const error = await check.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(GatewayError);
  return error as GatewayError;
}

const chat = (content: string, extra: Record<string, unknown> = {}) => chatCompletionRequest.parse({ model: 'm', messages: [{ role: 'user', content }], ...extra });

describe('context window', () => {
  it('lets a prompt within the byte bound through without counting', async () => {
    await expect(checkChatContextWindow(chat('hello '.repeat(100)), model, counters)).resolves.toBeUndefined();
  });

  it('refuses a prompt past the window by its lower bound at once, saying "at least"', async () => {
    const started = performance.now();
    // 20 million characters of one word: the old count took minutes; the lower bound needs none.
    const error = await refusal(checkChatContextWindow(chat('a'.repeat(20_000_000)), model, counters));
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(error.status).toBe(400);
    expect(error.code).toBe('context_length_exceeded');
    expect(error.message).toMatch(/maximum context length is 1000 tokens\. However, you requested at least 156\d{3} tokens/);
  });

  it('counts a prompt between the bounds, stopping past the window', async () => {
    // 40k characters: lower bound 313 tokens, upper bound 40k; about 10k tokens of prose.
    const error = await refusal(checkChatContextWindow(chat('The quick brown fox jumps. '.repeat(1_500)), model, counters));
    expect(error.param).toBe('messages');
    const requested = Number(/requested at least (\d+) tokens/.exec(error.message)?.[1]);
    expect(requested).toBeGreaterThan(1_000);
    expect(requested).toBeLessThan(1_000 + 20_000);
    // Exactly at the window: allowed.
    const counter = await counters.get('cl100k_base');
    let text = 'word '.repeat(990);
    while (counter.countChat([{ role: 'user', content: text }]) < 1_000 - 10) text += 'word ';
    const completion = 1_000 - counter.countChat([{ role: 'user', content: text }]);
    await expect(checkChatContextWindow(chat(text, { max_tokens: completion }), model, counters)).resolves.toBeUndefined();
    await refusal(checkChatContextWindow(chat(text, { max_tokens: completion + 1 }), model, counters));
  });

  it('checks each legacy prompt and each embedding input', async () => {
    const long = 'lorem ipsum dolor '.repeat(1_000);
    const completion = await refusal(checkCompletionContextWindow(completionRequest.parse({ model: 'm', prompt: ['short', long] }), model, counters));
    expect(completion.param).toBe('prompt');
    await expect(checkCompletionContextWindow(completionRequest.parse({ model: 'm', prompt: 'short' }), model, counters)).resolves.toBeUndefined();
    const embedding = await refusal(checkEmbeddingContextWindow(['short', long], model, counters));
    expect(embedding.param).toBe('input');
    expect(embedding.message).toMatch(/in the input\)/);
    await refusal(checkEmbeddingContextWindow([Array.from({ length: 1_001 }, () => 1)], model, counters));
    await expect(checkEmbeddingContextWindow(['short', [1, 2, 3]], model, counters)).resolves.toBeUndefined();
  });
});
