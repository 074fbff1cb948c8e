/**
 * One generation on a leased sequence: a chat answer (LlamaChat) or a text completion
 * (LlamaCompletion). Sizes the completion to what fits the context, streams text through
 * `onText`, and measures usage with the sequence's token meter.
 */
import type { ChatHistoryItem, LlamaGrammar, Token } from 'node-llama-cpp';
import { contextLengthExceeded } from '../../errors/gateway-error.js';
import type { SequenceLease } from './loaded-models.js';
import { finishReason, type SamplingOptions } from './generation-options.js';

export interface Generated {
  text: string;
  finishReason: 'stop' | 'length';
  promptTokens: number;
  completionTokens: number;
}

export interface GenerateOptions {
  sampling: SamplingOptions;
  /** The client's limit; null: whatever fits the context (and `max_output_tokens`). */
  maxTokens: number | null;
  /** The model config's `max_output_tokens`, used when the client sets no limit. */
  defaultMaxTokens: number | undefined;
  signal: AbortSignal;
  onText?: (text: string) => void;
  /** Parameter named by a context-length error. */
  param?: string;
  /** Constrains the chat answer (response_format). */
  grammar?: LlamaGrammar;
  /** Upper bound when the client sets no limit (structured output: a grammar may never end). */
  defaultCap?: number;
}

function completionBudget(lease: SequenceLease, promptTokens: number, options: GenerateOptions): number {
  const room = lease.loaded.contextSize - promptTokens;
  if (room <= 0 || (options.maxTokens !== null && options.maxTokens > room)) {
    throw contextLengthExceeded({
      contextWindow: lease.loaded.contextSize,
      promptTokens,
      completionTokens: options.maxTokens ?? 0,
      ...(options.param === undefined ? {} : { param: options.param }),
    });
  }
  return options.maxTokens ?? Math.min(room, options.defaultMaxTokens ?? room, options.defaultCap ?? room);
}

async function metered<R>(lease: SequenceLease, run: () => Promise<R>): Promise<{ result: R; promptTokens: number; completionTokens: number }> {
  const meter = lease.sequence.tokenMeter;
  const input = meter.usedInputTokens;
  const output = meter.usedOutputTokens;
  const result = await run();
  return { result, promptTokens: meter.usedInputTokens - input, completionTokens: meter.usedOutputTokens - output };
}

export async function generateChat(lease: SequenceLease, history: ChatHistoryItem[], options: GenerateOptions): Promise<Generated> {
  const chat = new lease.loaded.lib.LlamaChat({ contextSequence: lease.sequence, chatWrapper: lease.loaded.chatWrapper, autoDisposeSequence: false });
  try {
    const { contextText } = chat.chatWrapper.generateContextState({ chatHistory: [...history, { type: 'model', response: [] }] });
    const maxTokens = completionBudget(lease, contextText.tokenize(lease.loaded.model.tokenizer).length, options);
    const { result, promptTokens, completionTokens } = await metered(lease, () =>
      chat.generateResponse(history, {
        ...options.sampling,
        maxTokens,
        signal: options.signal,
        ...(options.grammar ? { grammar: options.grammar } : {}),
        ...(options.onText ? { onTextChunk: options.onText } : {}),
      }),
    );
    return { text: result.response, finishReason: finishReason(result.metadata.stopReason), promptTokens, completionTokens };
  } finally {
    chat.dispose({ disposeSequence: false });
  }
}

export async function generateCompletion(lease: SequenceLease, prompt: string | Token[], options: GenerateOptions): Promise<Generated> {
  const completion = new lease.loaded.lib.LlamaCompletion({ contextSequence: lease.sequence, autoDisposeSequence: false });
  try {
    const promptTokens = typeof prompt === 'string' ? lease.loaded.model.tokenize(prompt).length + 1 : prompt.length;
    const maxTokens = completionBudget(lease, promptTokens, options);
    if (maxTokens === 0) return { text: '', finishReason: 'length', promptTokens, completionTokens: 0 };
    const metered_ = await metered(lease, () =>
      completion.generateCompletionWithMeta(prompt, {
        ...options.sampling,
        maxTokens,
        signal: options.signal,
        ...(options.onText ? { onTextChunk: options.onText } : {}),
      }),
    );
    const { result } = metered_;
    return {
      text: result.response,
      finishReason: finishReason(result.metadata.stopReason),
      promptTokens: metered_.promptTokens,
      completionTokens: metered_.completionTokens,
    };
  } finally {
    completion.dispose({ disposeSequence: false });
  }
}
