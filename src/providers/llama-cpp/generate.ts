/**
 * One generation on a leased sequence: a chat answer (LlamaChat) or a text completion
 * (LlamaCompletion). Sizes the completion to what fits the context, streams text through
 * `onText`, and measures usage with the sequence's token meter.
 */
import type { ChatHistoryItem, ChatModelFunctions, LlamaChatResponseFunctionCallParamsChunk, LlamaGrammar, Token } from 'node-llama-cpp';
import { contextLengthExceeded } from '../../errors/gateway-error.js';
import type { CompletionLogprobs, TokenLogprob } from '../../openai/responses.js';
import type { SequenceLease } from './loaded-models.js';
import { generateTokens, toCompletionLogprobs, type GeneratedPiece } from './token-generation.js';
import { finishReason, type LlamaStopReason, type SamplingOptions } from './generation-options.js';

export interface Generated {
  text: string;
  /** Per-token log probabilities (when asked for with `topLogprobs`). */
  logprobs?: TokenLogprob[];
  /** Function calls the model made (chat with `functions` only), in order. */
  functionCalls?: Array<{ name: string; params: unknown }>;
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
  /** Functions the model may call (chat only; not with `grammar`). */
  functions?: ChatModelFunctions;
  /** Calls at most this many functions in one turn (default 1). */
  maxParallelFunctionCalls?: number;
  /**
   * Report log probabilities with this many alternatives per token (0: the chosen token's
   * only). Runs the token loop of token-generation.ts instead of LlamaChat/LlamaCompletion;
   * not with `functions`. Streamed text then goes to `onPiece` instead of `onText`.
   */
  topLogprobs?: number;
  onPiece?: (piece: GeneratedPiece) => void;
  /** Streams the generated arguments of function calls. */
  onFunctionCallParamsChunk?: (chunk: LlamaChatResponseFunctionCallParamsChunk) => void;
}

/** The prompt of the model's next turn: a new turn, or the continuation of the last one (after tool results). */
export function withOpenTurn(history: ChatHistoryItem[]): ChatHistoryItem[] {
  return history.at(-1)?.type === 'model' ? history : [...history, { type: 'model', response: [] }];
}

export function completionBudget(lease: SequenceLease, promptTokens: number, options: GenerateOptions): number {
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
    const { contextText } = chat.chatWrapper.generateContextState({
      chatHistory: withOpenTurn(history),
      ...(options.functions ? { availableFunctions: options.functions, documentFunctionParams: true } : {}),
    });
    const promptLength = contextText.tokenize(lease.loaded.model.tokenizer).length;
    const maxTokens = completionBudget(lease, promptLength, options);
    const common = {
      ...options.sampling,
      maxTokens,
      signal: options.signal,
      ...(options.onText ? { onTextChunk: options.onText } : {}),
    };
    const { result, promptTokens, completionTokens } = await metered(lease, (): Promise<{ response: string; functionCalls?: Array<{ functionName: string; params: unknown }>; metadata: { stopReason: LlamaStopReason } }> =>
      options.functions
        ? chat.generateResponse(history, {
            ...common,
            functions: options.functions,
            documentFunctionParams: true,
            maxParallelFunctionCalls: options.maxParallelFunctionCalls ?? 1,
            ...(options.onFunctionCallParamsChunk ? { onFunctionCallParamsChunk: options.onFunctionCallParamsChunk } : {}),
          })
        : chat.generateResponse(history, { ...common, ...(options.grammar ? { grammar: options.grammar } : {}) }),
    );
    const functionCalls = result.functionCalls?.map((call) => ({ name: call.functionName, params: call.params as unknown }));
    return {
      text: result.response,
      ...(functionCalls?.length ? { functionCalls } : {}),
      finishReason: finishReason(result.metadata.stopReason),
      // Syntax the library inserts during function calls is evaluated as input: it belongs to the answer.
      promptTokens: promptLength,
      completionTokens: completionTokens + Math.max(0, promptTokens - promptLength),
    };
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

/** The stop triggers of a chat template that are plain text (special tokens end generation anyway). */
function textStops(triggers: ReadonlyArray<{ values: readonly unknown[] }>): string[] {
  return triggers.flatMap((trigger) => (trigger.values.length > 0 && trigger.values.every((value) => typeof value === 'string') ? [trigger.values.join('')] : []));
}

async function generateWithLogprobs(lease: SequenceLease, promptTokens: Token[], stopTexts: string[], options: GenerateOptions): Promise<Generated> {
  const maxTokens = completionBudget(lease, promptTokens.length, options);
  const result = await generateTokens(lease.sequence, lease.loaded.model, promptTokens, {
    sampling: options.sampling,
    ...(options.sampling.topK !== undefined ? { topK: options.sampling.topK } : {}),
    maxTokens,
    stopTexts: [...(options.sampling.customStopTriggers ?? []), ...stopTexts],
    ...(options.grammar ? { grammar: options.grammar } : {}),
    topLogprobs: options.topLogprobs ?? 0,
    signal: options.signal,
    ...(options.onPiece ? { onToken: options.onPiece } : {}),
  });
  return { text: result.text, logprobs: result.tokens, finishReason: result.finishReason, promptTokens: result.promptTokens, completionTokens: result.completionTokens };
}

/** A chat answer with per-token log probabilities (text or response_format; no functions). */
export async function generateChatWithLogprobs(lease: SequenceLease, history: ChatHistoryItem[], options: GenerateOptions): Promise<Generated> {
  const state = lease.loaded.chatWrapper.generateContextState({ chatHistory: withOpenTurn(history) });
  const promptTokens = state.contextText.tokenize(lease.loaded.model.tokenizer);
  return generateWithLogprobs(lease, promptTokens, textStops(state.stopGenerationTriggers), options);
}

/** A legacy completion with per-token log probabilities. */
export async function generateCompletionWithLogprobs(lease: SequenceLease, prompt: string | Token[], options: GenerateOptions): Promise<Generated> {
  const model = lease.loaded.model;
  const tokens = typeof prompt === 'string' ? model.tokenize(prompt) : prompt;
  const bos = model.tokens.bos;
  const promptTokens = bos !== null && model.tokens.shouldPrependBosToken && tokens[0] !== bos ? [bos, ...tokens] : tokens;
  return generateWithLogprobs(lease, promptTokens, [], options);
}

export function completionLogprobsOf(tokens: TokenLogprob[], startOffset: number, topLogprobs: number): CompletionLogprobs {
  return toCompletionLogprobs(tokens, { startOffset, includeTop: topLogprobs > 0 });
}
