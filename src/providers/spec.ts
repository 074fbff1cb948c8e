/**
 * The provider interface: what every model back end (mock, OpenAI-compatible upstream,
 * llama.cpp, …) implements. Requests arrive validated and OpenAI-shaped; a provider
 * answers either with a whole result or with a stream of typed parts. The API layer turns
 * both into OpenAI's wire format, so no provider writes HTTP or SSE itself.
 *
 * Errors: a provider throws a GatewayError (source 'upstream' for errors of the model
 * back end). Thrown before the first part, it becomes an HTTP status; thrown mid-stream,
 * it becomes an SSE error frame.
 */
import type { ChatCompletionRequest } from '../openai/chat-completion-request.js';
import type { CompletionRequest } from '../openai/completion-request.js';
import type { EmbeddingRequest, EmbeddingUsage } from '../openai/embedding-request.js';
import type {
  AssistantMessage,
  ChatFinishReason,
  ChatLogprobs,
  CompletionLogprobs,
  Usage,
} from '../openai/responses.js';
import type { ModelConfig } from '../config/schema.js';

/** Everything a provider call needs besides the request itself. */
export interface ProviderCall {
  /** The configured model entry the client's `model` resolved to. */
  model: ModelConfig;
  /** Aborted when the client disconnects or the request times out. */
  signal: AbortSignal;
  /** The request's id (`x-request-id`), to forward upstream for tracing. */
  requestId: string;
}

/** Identity of the answer, when the back end gives one (else the API layer makes it up). */
export interface ResultMetadata {
  id?: string;
  created?: number;
  systemFingerprint?: string | null;
  serviceTier?: string | null;
  /** Which target of a router model served the answer (its id), for `x-chatgate-target` and the audit log. */
  target?: string;
}

export interface ChatResult extends ResultMetadata {
  choices: Array<{
    index: number;
    message: AssistantMessage;
    finishReason: ChatFinishReason;
    logprobs: ChatLogprobs | null;
  }>;
  usage: Usage;
}

export interface CompletionResult extends ResultMetadata {
  choices: Array<{
    index: number;
    text: string;
    finishReason: 'stop' | 'length' | 'content_filter';
    logprobs: CompletionLogprobs | null;
  }>;
  usage: Usage;
}

/**
 * The answer to an embedding request: one vector per input, in the order of the inputs
 * (`embeddingInputs(request.input)`). Float32, as OpenAI's embeddings are; the API layer
 * applies `dimensions` (truncating longer vectors and re-normalizing them) and
 * `encoding_format`, so a provider returns plain vectors whatever the client asked.
 */
export interface EmbeddingResult {
  embeddings: Float32Array[];
  usage: EmbeddingUsage;
  /** Which target of a router model answered (see ResultMetadata.target). */
  target?: string;
}

/** One piece of a streamed answer. `choice` is the choice index (0 unless n > 1). */
export type StreamPart =
  | ({ type: 'metadata' } & ResultMetadata)
  /**
   * The assistant's turn opened before any content (an upstream's role-only delta): lets the
   * client see the stream start before the first token. `content` is the opening's value.
   */
  | { type: 'role'; choice: number; content: '' | null }
  | { type: 'text-delta'; choice: number; text: string; logprobs?: ChatLogprobs | CompletionLogprobs | null }
  | { type: 'refusal-delta'; choice: number; text: string }
  | {
      type: 'tool-call-delta';
      choice: number;
      /** Position of the call among the choice's tool calls. */
      index: number;
      /** Present on the first fragment of a call only. */
      id?: string;
      /** Present on the first fragment of a call only. */
      name?: string;
      argumentsDelta: string;
    }
  | { type: 'function-call-delta'; choice: number; name?: string; argumentsDelta: string }
  | { type: 'finish'; choice: number; reason: ChatFinishReason }
  | { type: 'usage'; usage: Usage };

/** What a provider can do; the API layer refuses what a model cannot take, with a 400. */
export interface ProviderCapabilities {
  vision: boolean;
  logprobs: boolean;
}

export interface Provider {
  readonly capabilities: ProviderCapabilities;
  chat(request: ChatCompletionRequest, call: ProviderCall): Promise<ChatResult>;
  streamChat(request: ChatCompletionRequest, call: ProviderCall): AsyncIterable<StreamPart>;
  complete(request: CompletionRequest, call: ProviderCall): Promise<CompletionResult>;
  streamComplete(request: CompletionRequest, call: ProviderCall): AsyncIterable<StreamPart>;
  /**
   * Embeddings (`POST /v1/embeddings`). Optional: a model whose provider has none is refused
   * with a 400 (param `model`). Vectors should be unit length; they may be longer than
   * `request.dimensions` (the API layer truncates) but not shorter.
   */
  embed?(request: EmbeddingRequest, call: ProviderCall): Promise<EmbeddingResult>;
  /** Releases pooled connections, loaded models, … */
  close?(): Promise<void>;
}
