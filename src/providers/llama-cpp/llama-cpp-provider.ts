/**
 * The `llama-cpp` provider: runs GGUF models in-process with node-llama-cpp (CPU, or GPU
 * when available). One provider serves every llama-cpp model of the config; each model is
 * loaded on first use (see loaded-models.ts). Text chat and legacy completions, streamed or
 * not, structured chat output (response_format, structured-output.ts) and embeddings
 * (embeddings.ts); tools, logprobs and images are refused with a 400 for now.
 *
 * n > 1 runs the choices one after another on the same sequence.
 */
import type { Token } from 'node-llama-cpp';
import type { LlamaCppModelConfig, ModelConfig } from '../../config/schema.js';
import { invalidRequest } from '../../errors/gateway-error.js';
import type { CompletionRequest } from '../../openai/completion-request.js';
import type { Usage } from '../../openai/responses.js';
import type { ChatResult, CompletionResult, Provider, ProviderCall, StreamPart } from '../spec.js';
import { checkChatSupported, toChatHistory } from './chat-history.js';
import { embedWithLlama } from './embeddings.js';
import { generateChat, generateCompletion, type GenerateOptions, type Generated } from './generate.js';
import { samplingOptions } from './generation-options.js';
import { LoadedModels, type SequenceLease } from './loaded-models.js';
import { textChunks } from './text-stream.js';
import { grammarFor, invalidModelOutput, outputFormatOf, outputProblem, STRUCTURED_DEFAULT_MAX_TOKENS, type OutputFormat } from './structured-output.js';

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

function usageOf(generations: Generated[], promptTokens: number): Usage {
  const completion = generations.reduce((sum, generated) => sum + generated.completionTokens, 0);
  return { prompt_tokens: promptTokens, completion_tokens: completion, total_tokens: promptTokens + completion };
}

/** What a legacy `prompt` is as a list of model inputs. */
function completionPrompts(prompt: CompletionRequest['prompt']): Array<string | Token[]> {
  if (typeof prompt === 'string') return [prompt];
  if (typeof prompt[0] === 'number') return [prompt as Token[]];
  return prompt as Array<string | Token[]>;
}

function checkCompletionSupported(request: CompletionRequest): void {
  if (request.logprobs != null) throw invalidRequest('The llama-cpp provider does not support logprobs yet.', 'logprobs');
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

  /** Runs `body` on a leased sequence; releases (and clears) it afterwards, also on abort. */
  async function withSequence<R>(call: ProviderCall, body: (lease: SequenceLease) => Promise<R>): Promise<R> {
    const lease = await models.acquire(llamaConfig(call), call.signal);
    try {
      return await body(lease);
    } finally {
      await lease.release();
    }
  }

  function generateOptions(call: ProviderCall, request: Parameters<typeof samplingOptions>[0], index: number, maxTokens: number | null, param: string, signal = call.signal): GenerateOptions {
    return { sampling: samplingOptions(request, index), maxTokens, defaultMaxTokens: llamaConfig(call).max_output_tokens, signal, param };
  }

  /** Runs the generations one by one, clearing the sequence in between. */
  async function* streamGenerations(
    call: ProviderCall,
    count: number,
    run: (lease: SequenceLease, index: number, onText: (text: string) => void, signal: AbortSignal) => Promise<Generated>,
  ): AsyncGenerator<StreamPart> {
    const lease = await models.acquire(llamaConfig(call), call.signal);
    try {
      const generations: Generated[] = [];
      for (let index = 0; index < count; index++) {
        if (index > 0) await lease.sequence.clearHistory();
        const chunks = textChunks(call.signal, (onText, signal) => run(lease, index, onText, signal));
        let generated: Generated;
        try {
          let step = await chunks.next();
          while (!step.done) {
            yield { type: 'text-delta', choice: index, text: step.value };
            step = await chunks.next();
          }
          generated = step.value;
        } finally {
          // Stops the generation (if the consumer left early) before the sequence is released.
          await chunks.return(undefined as never);
        }
        generations.push(generated);
        yield { type: 'finish', choice: index, reason: generated.finishReason };
      }
      yield { type: 'usage', usage: usageOf(generations, generations[0]?.promptTokens ?? 0) };
    } finally {
      await lease.release();
    }
  }

  /** The grammar and the default cap of a structured answer (nothing for plain text). */
  async function structuredOptions(lease: SequenceLease, format: OutputFormat | undefined): Promise<Partial<GenerateOptions>> {
    if (!format) return {};
    return { grammar: await grammarFor(lease.loaded.model, format), defaultCap: STRUCTURED_DEFAULT_MAX_TOKENS };
  }

  const provider: LlamaCppProvider = {
    capabilities: { vision: false, logprobs: false },
    preloaded,
    isLoaded: (name) => models.isLoaded(name),

    async chat(request, call): Promise<ChatResult> {
      checkChatSupported(request);
      const history = toChatHistory(request.messages);
      const format = outputFormatOf(request);
      const maxTokens = request.max_completion_tokens ?? request.max_tokens ?? null;
      return withSequence(call, async (lease) => {
        const structured = await structuredOptions(lease, format);
        const generations: Generated[] = [];
        for (let index = 0; index < (request.n ?? 1); index++) {
          if (index > 0) await lease.sequence.clearHistory();
          const options = { ...generateOptions(call, request, index, maxTokens, maxTokens === null ? 'messages' : 'max_tokens'), ...structured };
          let generated = await generateChat(lease, history, options);
          // A complete structured answer that fails validation gets one more try with another seed.
          if (format && generated.finishReason === 'stop' && outputProblem(format, generated.text) !== undefined) {
            await lease.sequence.clearHistory();
            const seed = options.sampling.seed;
            const retry = await generateChat(lease, history, { ...options, sampling: { ...options.sampling, seed: seed === undefined ? Math.floor(Math.random() * 2 ** 31) : seed + 1_000_003 } });
            const problem = retry.finishReason === 'stop' ? outputProblem(format, retry.text) : undefined;
            if (problem !== undefined) throw invalidModelOutput(call.model.name, problem);
            generated = { ...retry, completionTokens: generated.completionTokens + retry.completionTokens };
          }
          generations.push(generated);
        }
        return {
          choices: generations.map((generated, index) => ({
            index,
            message: { role: 'assistant', content: generated.text, refusal: null },
            finishReason: generated.finishReason,
            logprobs: null,
          })),
          usage: usageOf(generations, generations[0]?.promptTokens ?? 0),
        };
      });
    },

    async *streamChat(request, call) {
      checkChatSupported(request);
      const history = toChatHistory(request.messages);
      const format = outputFormatOf(request);
      const maxTokens = request.max_completion_tokens ?? request.max_tokens ?? null;
      const param = maxTokens === null ? 'messages' : 'max_tokens';
      yield* streamGenerations(call, request.n ?? 1, async (lease, index, onText, signal) => {
        const structured = await structuredOptions(lease, format);
        const generated = await generateChat(lease, history, { ...generateOptions(call, request, index, maxTokens, param, signal), ...structured, onText });
        // The text has been sent already: no retry; an invalid complete answer ends the stream with an error.
        const problem = format && generated.finishReason === 'stop' ? outputProblem(format, generated.text) : undefined;
        if (problem !== undefined) throw invalidModelOutput(call.model.name, problem);
        return generated;
      });
    },

    async complete(request, call): Promise<CompletionResult> {
      checkCompletionSupported(request);
      const prompts = completionPrompts(request.prompt);
      const n = request.n ?? 1;
      const maxTokens = request.max_tokens ?? 16;
      return withSequence(call, async (lease) => {
        const choices: CompletionResult['choices'] = [];
        const generations: Generated[] = [];
        let promptTokens = 0;
        for (const [promptIndex, prompt] of prompts.entries()) {
          for (let index = 0; index < n; index++) {
            if (generations.length > 0) await lease.sequence.clearHistory();
            const generated = await generateCompletion(lease, prompt, generateOptions(call, request, index, maxTokens, 'max_tokens'));
            if (index === 0) promptTokens += generated.promptTokens;
            generations.push(generated);
            const echo = request.echo ? (typeof prompt === 'string' ? prompt : lease.loaded.model.detokenize(prompt)) : '';
            choices.push({ index: promptIndex * n + index, text: echo + generated.text, finishReason: generated.finishReason, logprobs: null });
          }
        }
        return { choices, usage: usageOf(generations, promptTokens) };
      });
    },

    async *streamComplete(request, call) {
      checkCompletionSupported(request);
      const prompts = completionPrompts(request.prompt);
      if (prompts.length > 1 || request.echo) {
        throw invalidRequest('The llama-cpp provider streams one prompt at a time, without echo, for now.', prompts.length > 1 ? 'prompt' : 'echo');
      }
      const prompt = prompts[0]!;
      const maxTokens = request.max_tokens ?? 16;
      yield* streamGenerations(call, request.n ?? 1, (lease, index, onText, signal) =>
        generateCompletion(lease, prompt, { ...generateOptions(call, request, index, maxTokens, 'max_tokens', signal), onText }),
      );
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


