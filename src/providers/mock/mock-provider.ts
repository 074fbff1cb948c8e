/**
 * The `mock` provider: a deterministic, offline model for testing apps without one. It
 * echoes the last user message (or quotes tool results), calls tools named in the message,
 * fills JSON Schemas for tool arguments and structured outputs, and honours `n`, `stop`,
 * token limits, logprobs and streaming, and makes deterministic embeddings
 * (mock-embedding.ts). docs/providers/mock.md describes it for users.
 */
import type { TokenCounter, TokenCounters } from '../../tokens/token-counter.js';
import type { Provider, ProviderCall } from '../spec.js';
import { chatResultAsync, promptTools } from './chat-result.js';
import type { ChatCompletionRequest } from '../../openai/chat-completion-request.js';
import { completionResultAsync } from './legacy-completion.js';
import { mockEmbeddingResult } from './mock-embedding.js';
import { chatStreamParts, completionStreamParts, type StreamOptions } from './mock-stream.js';

export interface MockProviderOptions {
  tokenCounters: TokenCounters;
}

export function createMockProvider(options: MockProviderOptions): Provider {
  const counterFor = (call: ProviderCall): Promise<TokenCounter> => options.tokenCounters.get(call.model.tokenizer);

  async function streamOptions(call: ProviderCall): Promise<StreamOptions> {
    return {
      counter: await counterFor(call),
      delayMs: call.model.provider === 'mock' ? call.model.stream_delay_ms : 0,
      signal: call.signal,
    };
  }

  /** The prompt's tokens, counted without blocking the event loop (a prompt may fill a 128k window). */
  const promptTokens = (request: ChatCompletionRequest, counter: TokenCounter): Promise<number> => counter.countChatAsync(request.messages, promptTools(request));

  return {
    capabilities: { vision: true, logprobs: true },

    async chat(request, call) {
      call.signal.throwIfAborted();
      const counter = await counterFor(call);
      return chatResultAsync(request, call.model, counter, await promptTokens(request, counter));
    },

    async *streamChat(request, call) {
      call.signal.throwIfAborted();
      const stream = await streamOptions(call);
      yield* chatStreamParts(await chatResultAsync(request, call.model, stream.counter, await promptTokens(request, stream.counter)), stream);
    },

    async complete(request, call) {
      call.signal.throwIfAborted();
      return completionResultAsync(request, await counterFor(call));
    },

    async *streamComplete(request, call) {
      call.signal.throwIfAborted();
      const stream = await streamOptions(call);
      yield* completionStreamParts(await completionResultAsync(request, stream.counter), stream);
    },

    async embed(request, call) {
      call.signal.throwIfAborted();
      return mockEmbeddingResult(request, await counterFor(call));
    },
  };
}
