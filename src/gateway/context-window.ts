/**
 * Refuses a request whose prompt plus requested completion cannot fit the model's
 * context window, before anything is sent upstream (`context_length_exceeded`). The
 * check is cheap for ordinary requests: a prompt's UTF-8 byte count bounds its token
 * count, so real tokenization happens only when that bound comes near the window.
 */
import type { ChatCompletionRequest } from '../openai/chat-completion-request.js';
import type { CompletionRequest } from '../openai/completion-request.js';
import { contextLengthExceeded } from '../errors/gateway-error.js';
import { contentText, tokenUpperBound, type TokenCounters } from '../tokens/token-counter.js';
import type { ModelConfig } from '../config/schema.js';

/** Per-message framing tokens, and the reply primer, as counted by `countChat`. */
const MESSAGE_OVERHEAD = 8;

function chatUpperBound(request: ChatCompletionRequest): number {
  let bound = 3;
  for (const message of request.messages) {
    bound += MESSAGE_OVERHEAD + tokenUpperBound(contentText((message as { content?: unknown }).content));
    const content = (message as { content?: unknown }).content;
    if (Array.isArray(content)) bound += 85 * content.length;
    if (message.role === 'assistant' && (message.tool_calls || message.function_call)) {
      bound += tokenUpperBound(JSON.stringify(message.tool_calls ?? message.function_call));
    }
    if (message.role === 'tool') bound += tokenUpperBound(message.tool_call_id);
    if ('name' in message && typeof message.name === 'string') bound += 1 + tokenUpperBound(message.name);
  }
  if (request.tools?.length) bound += tokenUpperBound(JSON.stringify(request.tools));
  if (request.functions?.length) bound += tokenUpperBound(JSON.stringify(request.functions));
  return bound;
}

export async function checkChatContextWindow(
  request: ChatCompletionRequest,
  model: ModelConfig,
  counters: TokenCounters,
): Promise<void> {
  const completion = request.max_completion_tokens ?? request.max_tokens ?? 0;
  const window = model.context_window;
  if (chatUpperBound(request) + completion <= window) return;
  const counter = await counters.get(model.tokenizer);
  let prompt = counter.countChat(request.messages, request.tools);
  if (request.functions?.length) prompt += counter.count(JSON.stringify(request.functions));
  if (prompt + completion > window) {
    throw contextLengthExceeded({ contextWindow: window, promptTokens: prompt, completionTokens: completion });
  }
}

function promptTexts(prompt: CompletionRequest['prompt']): Array<string | number[]> {
  if (typeof prompt === 'string') return [prompt];
  if (prompt.length > 0 && typeof prompt[0] === 'number') return [prompt as number[]];
  return prompt as Array<string | number[]>;
}

export async function checkCompletionContextWindow(
  request: CompletionRequest,
  model: ModelConfig,
  counters: TokenCounters,
): Promise<void> {
  const completion = request.max_tokens ?? 16;
  const window = model.context_window;
  const prompts = promptTexts(request.prompt);
  const bound = Math.max(...prompts.map((prompt) => (typeof prompt === 'string' ? tokenUpperBound(prompt) : prompt.length)));
  if (bound + completion <= window) return;
  const counter = await counters.get(model.tokenizer);
  for (const prompt of prompts) {
    const tokens = typeof prompt === 'string' ? counter.count(prompt) : prompt.length;
    if (tokens + completion > window) {
      throw contextLengthExceeded({ contextWindow: window, promptTokens: tokens, completionTokens: completion, param: 'prompt' });
    }
  }
}
