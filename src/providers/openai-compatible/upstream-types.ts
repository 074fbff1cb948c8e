/**
 * The shapes an OpenAI-style upstream sends back, as loosely as they arrive: every field is
 * optional or nullable because OpenAI-compatible servers (vLLM, Ollama, llama-server, …) each
 * leave out different ones. The mappers check what they use; nothing here is validated.
 */
import type { ChatLogprobs, CompletionLogprobs, Usage } from '../../openai/responses.js';

/** `{"error": {...}}` as OpenAI sends it (and as some servers send it, with an integer code). */
export interface UpstreamErrorBody {
  message?: unknown;
  type?: unknown;
  code?: unknown;
  param?: unknown;
}

interface UpstreamMetadata {
  id?: string;
  created?: number;
  system_fingerprint?: string | null;
  service_tier?: string | null;
  usage?: Partial<Usage> | null;
  error?: UpstreamErrorBody | string | null;
}

export interface UpstreamToolCall {
  index?: number;
  id?: string | null;
  type?: string;
  function?: { name?: string | null; arguments?: string | null } | null;
}

export interface UpstreamChatMessage {
  role?: string;
  content?: string | null;
  refusal?: string | null;
  tool_calls?: UpstreamToolCall[] | null;
  function_call?: { name?: string; arguments?: string } | null;
  annotations?: unknown[] | null;
  [field: string]: unknown;
}

export interface UpstreamChatCompletion extends UpstreamMetadata {
  choices?: Array<{
    index?: number;
    message?: UpstreamChatMessage | null;
    finish_reason?: string | null;
    logprobs?: ChatLogprobs | null;
  }>;
}

export interface UpstreamCompletion extends UpstreamMetadata {
  choices?: Array<{
    index?: number;
    text?: string | null;
    finish_reason?: string | null;
    logprobs?: CompletionLogprobs | null;
  }>;
}

export interface UpstreamChatChunk extends UpstreamMetadata {
  choices?: Array<{
    index?: number;
    delta?: {
      role?: string | null;
      content?: string | null;
      refusal?: string | null;
      tool_calls?: UpstreamToolCall[] | null;
      function_call?: { name?: string | null; arguments?: string | null } | null;
    } | null;
    finish_reason?: string | null;
    logprobs?: ChatLogprobs | null;
  }>;
}

export interface UpstreamCompletionChunk extends UpstreamMetadata {
  choices?: Array<{
    index?: number;
    text?: string | null;
    finish_reason?: string | null;
    logprobs?: CompletionLogprobs | null;
  }>;
}
