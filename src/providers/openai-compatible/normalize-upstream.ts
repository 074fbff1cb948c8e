/** Small normalizations of upstream values shared by the whole-answer and streamed paths. */
import type { ChatFinishReason, Usage } from '../../openai/responses.js';

type CompletionFinishReason = 'stop' | 'length' | 'content_filter';

/** Upstreams invent reasons (vLLM's `abort`, llama-server's `eos`…): anything unknown is `stop`. */
export function chatFinishReason(reason: string): ChatFinishReason {
  switch (reason) {
    case 'stop':
    case 'length':
    case 'tool_calls':
    case 'content_filter':
    case 'function_call':
      return reason;
    default:
      return 'stop';
  }
}

export function completionFinishReason(reason: string | null | undefined): CompletionFinishReason {
  return reason === 'length' || reason === 'content_filter' ? reason : 'stop';
}

/** Upstream usage as OpenAI shapes it; the object itself when already complete (no copy). */
export function normalizeUsage(usage: Partial<Usage> | null | undefined): Usage {
  if (usage === null || usage === undefined || typeof usage !== 'object') return zeroUsage();
  const promptTokens = usage.prompt_tokens;
  const completionTokens = usage.completion_tokens;
  const totalTokens = usage.total_tokens;
  if (typeof promptTokens === 'number' && typeof completionTokens === 'number' && typeof totalTokens === 'number') {
    return usage as Usage;
  }
  const normalized: Usage = {
    ...usage,
    prompt_tokens: typeof promptTokens === 'number' ? promptTokens : 0,
    completion_tokens: typeof completionTokens === 'number' ? completionTokens : 0,
    total_tokens: 0,
  };
  normalized.total_tokens = typeof totalTokens === 'number' ? totalTokens : normalized.prompt_tokens + normalized.completion_tokens;
  return normalized;
}

export function zeroUsage(): Usage {
  return { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
}
