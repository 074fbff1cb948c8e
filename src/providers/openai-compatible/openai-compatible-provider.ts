/**
 * The `openai-compatible` provider: forwards chat and legacy completion requests to any
 * OpenAI-style upstream (OpenAI, vLLM, Ollama, llama-server, …). The client's request goes up
 * as it came, `model` renamed; answers come back as results or StreamParts.
 *
 * Embeddings go up to `${base_url}/embeddings` the same way, with the client's
 * `encoding_format` (so a base64 answer, 4 bytes a value, stays compact on the way in); base64
 * vectors are decoded to floats here, and the API layer encodes the answer as the client asked.
 *
 * The provider instance owns one keep-alive connection pool per upstream origin; `close()`
 * closes them.
 */
import type { OpenAiCompatibleModelConfig } from '../../config/schema.js';
import { internalError } from '../../errors/gateway-error.js';
import type { ChatCompletionRequest } from '../../openai/chat-completion-request.js';
import type { CompletionRequest } from '../../openai/completion-request.js';
import { fromBase64Embedding } from '../../openai/embedding-encoding.js';
import type { EmbeddingRequest } from '../../openai/embedding-request.js';
import type { ChatResult, CompletionResult, EmbeddingResult, Provider, ProviderCall, ProviderCapabilities, StreamPart } from '../spec.js';
import type { StreamKind } from './chunk-translator.js';
import { UpstreamRequestLifetime } from './request-lifetime.js';
import { UpstreamClient } from './upstream-client.js';
import type { UpstreamClientOptions } from './upstream-client.js';
import { RecordReplayClient, type RecordReplayStore, type UpstreamTransport } from './record-replay-client.js';
import { streamedAnswerBody, wholeAnswerBody } from './upstream-request-body.js';
import { readJsonAnswer } from './upstream-response.js';
import { upstreamInvalidResponse } from './upstream-error.js';
import { toChatResult, toCompletionResult } from './upstream-result.js';
import { UpstreamPartStream } from './upstream-stream.js';
import { resolveUpstreamTarget } from './upstream-target.js';
import type { UpstreamTarget } from './upstream-target.js';

export type OpenAiCompatibleProviderOptions = UpstreamClientOptions & {
  /** Record or replay every upstream exchange through this cassette (docs/record-replay.md). */
  recordReplay?: RecordReplayStore | undefined;
};

export class OpenAiCompatibleProvider implements Provider {
  readonly capabilities: ProviderCapabilities = { vision: true, logprobs: true };
  private readonly client: UpstreamTransport;
  /** Targets worked out once per model configuration object. */
  private readonly targets = new WeakMap<OpenAiCompatibleModelConfig, UpstreamTarget>();

  constructor(options: OpenAiCompatibleProviderOptions = {}) {
    const client = new UpstreamClient(options);
    this.client = options.recordReplay === undefined ? client : new RecordReplayClient(client, options.recordReplay);
  }

  async chat(request: ChatCompletionRequest, call: ProviderCall): Promise<ChatResult> {
    const target = this.target(call);
    return toChatResult(await this.sendWhole(target, target.chatPath, wholeAnswerBody(request, target.upstreamModel), call));
  }

  async complete(request: CompletionRequest, call: ProviderCall): Promise<CompletionResult> {
    const target = this.target(call);
    return toCompletionResult(await this.sendWhole(target, target.completionsPath, wholeAnswerBody(request, target.upstreamModel), call));
  }

  streamChat(request: ChatCompletionRequest, call: ProviderCall): AsyncIterable<StreamPart> {
    const target = this.target(call);
    return this.sendStreamed('chat', target, target.chatPath, streamedAnswerBody(request, target.upstreamModel), call);
  }

  streamComplete(request: CompletionRequest, call: ProviderCall): AsyncIterable<StreamPart> {
    const target = this.target(call);
    return this.sendStreamed('completion', target, target.completionsPath, streamedAnswerBody(request, target.upstreamModel), call);
  }

  async embed(request: EmbeddingRequest, call: ProviderCall): Promise<EmbeddingResult> {
    const target = this.target(call);
    const body = JSON.stringify({ ...request, model: target.upstreamModel });
    return toEmbeddingResult(await this.sendWhole(target, target.embeddingsPath, body, call));
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  private async sendWhole(target: UpstreamTarget, path: string, body: string, call: ProviderCall): Promise<Record<string, unknown>> {
    const lifetime = new UpstreamRequestLifetime(call.signal, target.timeoutMs);
    const headers = target.jsonHeaders.concat('x-request-id', call.requestId);
    const response = await this.client.post(target.origin, path, headers, body, lifetime, target.connectTimeoutMs);
    return readJsonAnswer(response, lifetime, target.apiKey);
  }

  private sendStreamed(kind: StreamKind, target: UpstreamTarget, path: string, body: string, call: ProviderCall): UpstreamPartStream {
    const lifetime = new UpstreamRequestLifetime(call.signal, target.timeoutMs);
    const headers = target.streamHeaders.concat('x-request-id', call.requestId);
    return new UpstreamPartStream({
      kind,
      lifetime,
      apiKey: target.apiKey,
      send: () => this.client.post(target.origin, path, headers, body, lifetime, target.connectTimeoutMs),
    });
  }

  private target(call: ProviderCall): UpstreamTarget {
    const config = call.model;
    if (config.provider !== 'openai-compatible') {
      throw internalError(`Model '${config.name}' was routed to the openai-compatible provider, but its provider is '${config.provider}'.`);
    }
    let target = this.targets.get(config);
    if (target === undefined) {
      target = resolveUpstreamTarget(config);
      this.targets.set(config, target);
    }
    return target;
  }
}

/** Reads an upstream's `{data:[{index, embedding}], usage}`, floats or base64, ordered by index. */
export function toEmbeddingResult(answer: Record<string, unknown>): EmbeddingResult {
  const data = answer['data'];
  if (!Array.isArray(data)) throw upstreamInvalidResponse("The upstream's embeddings answer has no 'data' list.");
  const embeddings: Float32Array[] = [];
  data.forEach((item: unknown, position) => {
    const record = (typeof item === 'object' && item !== null ? item : {}) as Record<string, unknown>;
    const index = typeof record['index'] === 'number' ? record['index'] : position;
    const value = record['embedding'];
    let vector: Float32Array | undefined;
    if (typeof value === 'string') vector = fromBase64Embedding(value);
    else if (Array.isArray(value) && value.every((number) => typeof number === 'number')) vector = Float32Array.from(value as number[]);
    if (vector === undefined || !Number.isInteger(index) || index < 0 || index >= data.length || embeddings[index] !== undefined) {
      throw upstreamInvalidResponse(`The upstream's embedding ${position} is not a valid vector.`);
    }
    embeddings[index] = vector;
  });
  const usage = (typeof answer['usage'] === 'object' && answer['usage'] !== null ? answer['usage'] : {}) as Record<string, unknown>;
  const promptTokens = typeof usage['prompt_tokens'] === 'number' ? usage['prompt_tokens'] : 0;
  const totalTokens = typeof usage['total_tokens'] === 'number' ? usage['total_tokens'] : promptTokens;
  return { embeddings, usage: { prompt_tokens: promptTokens, total_tokens: totalTokens } };
}

export function createOpenAiCompatibleProvider(options: OpenAiCompatibleProviderOptions = {}): OpenAiCompatibleProvider {
  return new OpenAiCompatibleProvider(options);
}
