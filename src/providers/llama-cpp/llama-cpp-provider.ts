/**
 * The `llama-cpp` provider: runs GGUF models in-process with node-llama-cpp (CPU, or GPU
 * when available). One provider serves every llama-cpp model of the config; each model is
 * loaded on first use (see loaded-models.ts). Chat (text, response_format, function calling:
 * chat-choice.ts) and legacy completions, streamed or not, and embeddings (embeddings.ts).
 *
 * The `n` choices of a request (and the prompts of a legacy completion) run as parallel
 * sequences of the model's context, each taking its own sequence, so they are batched with
 * each other and with other requests (continuous batching).
 */
import type { Token } from 'node-llama-cpp';
import type { LlamaCppModelConfig, ModelConfig } from '../../config/schema.js';
import { invalidRequest } from '../../errors/gateway-error.js';
import type { ChatCompletionRequest } from '../../openai/chat-completion-request.js';
import type { CompletionRequest } from '../../openai/completion-request.js';
import type { AssistantMessage, Usage } from '../../openai/responses.js';
import type { ChatResult, CompletionResult, Provider, ProviderCall, StreamPart } from '../spec.js';
import { allOrAbort, callbackStream } from './callback-stream.js';
import { generateChatChoice, type ChoiceOutcome, type ChoiceRequest } from './chat-choice.js';
import { checkChatSupported, toChatHistory } from './chat-history.js';
import { embedWithLlama } from './embeddings.js';
import { completionLogprobsOf, generateCompletion, generateCompletionWithLogprobs, type GenerateOptions, type Generated } from './generate.js';
import type { GeneratedPiece } from './token-generation.js';
import { samplingOptions } from './generation-options.js';
import { LoadedModels, type SequenceLease } from './loaded-models.js';
import { outputFormatOf } from './structured-output.js';
import { toolPlanOf } from './tool-plan.js';

export interface LlamaCppProviderOptions {
  /** The configured models: used to pick GPU use and to preload `preload: true` models. */
  models?: ModelConfig[];
}

export interface LlamaCppProvider extends Provider {
  /** Resolves when the `preload` models are loaded (failures are kept for their first request). */
  readonly preloaded: Promise<void>;
  /** Whether a model (by configured name) is loaded or loading. */
  isLoaded(name: string): boolean;
  close(): Promise<void>;
}

function llamaConfig(call: ProviderCall): LlamaCppModelConfig {
  if (call.model.provider !== 'llama-cpp') throw new Error(`model '${call.model.name}' is not a llama-cpp model`);
  return call.model;
}

function usageOf(promptTokens: number, outcomes: Array<{ completionTokens: number }>): Usage {
  const completion = outcomes.reduce((sum, outcome) => sum + outcome.completionTokens, 0);
  return { prompt_tokens: promptTokens, completion_tokens: completion, total_tokens: promptTokens + completion };
}

function assistantMessage(outcome: ChoiceOutcome): AssistantMessage {
  if (outcome.toolCalls.length === 0) return { role: 'assistant', content: outcome.text, refusal: null };
  const content = outcome.text.length > 0 ? outcome.text : null;
  if (outcome.legacy) {
    const call = outcome.toolCalls[0]!;
    return { role: 'assistant', content, refusal: null, function_call: { name: call.function.name, arguments: call.function.arguments } };
  }
  return { role: 'assistant', content, refusal: null, tool_calls: outcome.toolCalls };
}

/** What every choice of a chat request shares; throws 400s before any sequence is taken. */
function choiceRequest(request: ChatCompletionRequest, call: ProviderCall): Omit<ChoiceRequest, 'emit'> {
  checkChatSupported(request);
  const history = toChatHistory(request.messages);
  const format = outputFormatOf(request);
  const tools = toolPlanOf(request);
  if (tools?.mode.kind === 'auto' && format) {
    throw invalidRequest("The llama-cpp provider cannot combine 'response_format' with tools the model may or may not call; use tool_choice 'required' or a named function, or leave out response_format.", 'response_format');
  }
  return { history, format, tools, modelName: call.model.name, ...(request.logprobs === true ? { topLogprobs: request.top_logprobs ?? 0 } : {}) };
}

/** What a legacy `prompt` is as a list of model inputs. */
function completionPrompts(prompt: CompletionRequest['prompt']): Array<string | Token[]> {
  if (typeof prompt === 'string') return [prompt];
  if (typeof prompt[0] === 'number') return [prompt as Token[]];
  return prompt as Array<string | Token[]>;
}

function checkCompletionSupported(request: CompletionRequest): void {
  if (request.logprobs != null && request.echo) throw invalidRequest("The llama-cpp provider does not report logprobs of an echoed prompt: use 'echo' or 'logprobs', not both.", 'logprobs');
  if (request.suffix) throw invalidRequest("The llama-cpp provider does not support 'suffix' yet.", 'suffix');
  if (request.best_of != null && request.best_of !== (request.n ?? 1)) {
    throw invalidRequest("The llama-cpp provider does not support 'best_of' greater than 'n' yet.", 'best_of');
  }
}

export function createLlamaCppProvider(options: LlamaCppProviderOptions = {}): LlamaCppProvider {
  const configs = (options.models ?? []).filter((model): model is LlamaCppModelConfig => model.provider === 'llama-cpp');
  const cpuOnly = configs.length > 0 && configs.every((model) => model.gpu_layers === 0);
  const models = new LoadedModels({ gpu: cpuOnly ? false : 'auto' });
  const preloaded = Promise.all(configs.filter((model) => model.preload).map((model) => models.preload(model).catch(() => {}))).then(() => {});

  /** Runs `body` on a sequence of its own; releases (and clears) it afterwards, also on abort. */
  async function withSequence<R>(call: ProviderCall, signal: AbortSignal, body: (lease: SequenceLease) => Promise<R>): Promise<R> {
    const lease = await models.acquire(llamaConfig(call), signal);
    try {
      return await body(lease);
    } finally {
      await lease.release();
    }
  }

  function generateOptions(call: ProviderCall, request: Parameters<typeof samplingOptions>[0], index: number, maxTokens: number | null, param: string, signal: AbortSignal): GenerateOptions {
    return { sampling: samplingOptions(request, index), maxTokens, defaultMaxTokens: llamaConfig(call).max_output_tokens, signal, param };
  }

  function chatMaxTokens(request: ChatCompletionRequest): { maxTokens: number | null; param: string } {
    const maxTokens = request.max_completion_tokens ?? request.max_tokens ?? null;
    return { maxTokens, param: maxTokens === null ? 'messages' : request.max_completion_tokens != null ? 'max_completion_tokens' : 'max_tokens' };
  }

  /** The n choices, each on its own sequence, concurrently. */
  function chatChoices(request: ChatCompletionRequest, call: ProviderCall, signal: AbortSignal, emit?: (part: StreamPart) => void): Promise<ChoiceOutcome[]> {
    const shared = choiceRequest(request, call);
    const { maxTokens, param } = chatMaxTokens(request);
    const tasks = Array.from({ length: request.n ?? 1 }, (_, index) => (taskSignal: AbortSignal) =>
      withSequence(call, taskSignal, async (lease) => {
        const choiceEmit = emit && ((part: StreamPart) => emit({ ...part, choice: index } as StreamPart));
        const outcome = await generateChatChoice(lease, { ...shared, ...(choiceEmit ? { emit: choiceEmit } : {}) }, generateOptions(call, request, index, maxTokens, param, taskSignal));
        emit?.({ type: 'finish', choice: index, reason: outcome.finishReason });
        return outcome;
      }),
    );
    return allOrAbort(signal, tasks);
  }

  /** The legacy prompts × n choices, each on its own sequence, concurrently. */
  function completionChoices(request: CompletionRequest, call: ProviderCall, signal: AbortSignal, emit?: (part: StreamPart) => void) {
    checkCompletionSupported(request);
    const prompts = completionPrompts(request.prompt);
    const n = request.n ?? 1;
    const maxTokens = request.max_tokens ?? 16;
    const topLogprobs = request.logprobs ?? undefined;
    const tasks = prompts.flatMap((prompt, promptIndex) =>
      Array.from({ length: n }, (_, index) => (taskSignal: AbortSignal) =>
        withSequence(call, taskSignal, async (lease) => {
          const choice = promptIndex * n + index;
          const echo = request.echo ? (typeof prompt === 'string' ? prompt : lease.loaded.model.detokenize(prompt)) : '';
          if (emit && echo) emit({ type: 'text-delta', choice, text: echo });
          const options = generateOptions(call, request, index, maxTokens, 'max_tokens', taskSignal);
          let generated: Generated;
          if (topLogprobs === undefined) {
            generated = await generateCompletion(lease, prompt, { ...options, ...(emit ? { onText: (text: string) => emit({ type: 'text-delta', choice, text }) } : {}) });
          } else {
            let offset = 0;
            generated = await generateCompletionWithLogprobs(lease, prompt, {
              ...options,
              topLogprobs,
              ...(emit
                ? {
                    onPiece: (piece: GeneratedPiece) => {
                      emit({ type: 'text-delta', choice, text: piece.text, logprobs: completionLogprobsOf(piece.logprobs, offset, topLogprobs) });
                      offset += [...piece.text].length;
                    },
                  }
                : {}),
            });
          }
          emit?.({ type: 'finish', choice, reason: generated.finishReason });
          const logprobs = generated.logprobs && topLogprobs !== undefined ? completionLogprobsOf(generated.logprobs, 0, topLogprobs) : null;
          return { ...generated, choice, promptIndex, text: echo + generated.text, logprobs };
        }),
      ),
    );
    return allOrAbort(signal, tasks);
  }

  function completionUsage(outcomes: Array<{ promptIndex: number; promptTokens: number; completionTokens: number }>): Usage {
    const promptTokens = new Map<number, number>();
    for (const outcome of outcomes) promptTokens.set(outcome.promptIndex, outcome.promptTokens);
    return usageOf([...promptTokens.values()].reduce((sum, tokens) => sum + tokens, 0), outcomes);
  }

  const provider: LlamaCppProvider = {
    capabilities: { vision: false, logprobs: true },
    preloaded,
    isLoaded: (name) => models.isLoaded(name),

    async chat(request, call): Promise<ChatResult> {
      const outcomes = await chatChoices(request, call, call.signal);
      return {
        choices: outcomes.map((outcome, index) => ({
          index,
          message: assistantMessage(outcome),
          finishReason: outcome.finishReason,
          logprobs: outcome.logprobs ? { content: outcome.logprobs, refusal: null } : null,
        })),
        usage: usageOf(outcomes[0]?.promptTokens ?? 0, outcomes),
      };
    },

    async *streamChat(request, call) {
      const parts = callbackStream<StreamPart, ChoiceOutcome[]>(call.signal, (emit, signal) => chatChoices(request, call, signal, emit));
      let step = await parts.next();
      while (!step.done) {
        yield step.value;
        step = await parts.next();
      }
      yield { type: 'usage', usage: usageOf(step.value[0]?.promptTokens ?? 0, step.value) };
    },

    async complete(request, call): Promise<CompletionResult> {
      const outcomes = await completionChoices(request, call, call.signal);
      return {
        choices: outcomes.map((outcome) => ({ index: outcome.choice, text: outcome.text, finishReason: outcome.finishReason, logprobs: outcome.logprobs })),
        usage: completionUsage(outcomes),
      };
    },

    async *streamComplete(request, call) {
      checkCompletionSupported(request);
      const parts = callbackStream<StreamPart, Awaited<ReturnType<typeof completionChoices>>>(call.signal, (emit, signal) => completionChoices(request, call, signal, emit));
      let step = await parts.next();
      while (!step.done) {
        yield step.value;
        step = await parts.next();
      }
      yield { type: 'usage', usage: completionUsage(step.value) };
    },

    async embed(request, call) {
      call.signal.throwIfAborted();
      const lease = await models.acquireEmbedding(llamaConfig(call));
      try {
        return await embedWithLlama(request, lease.loaded.model, lease.embedding, lease.loaded.contextSize, call.signal);
      } finally {
        lease.release();
      }
    },

    close: () => models.close(),
  };
  return provider;
}
