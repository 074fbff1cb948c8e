/**
 * Refuses a request whose prompt plus requested completion cannot fit the model's
 * context window, before anything is sent upstream (`context_length_exceeded`). The
 * check is cheap for ordinary requests: a prompt's UTF-8 byte count bounds its token
 * count, so real tokenization happens only when that bound comes near the window. A prompt
 * whose lower bound (bytes / 128, the longest token) is already past the window is refused
 * at once without counting; otherwise it is counted without blocking the event loop
 * (`countAsync`), stopping as soon as the count passes the window ("at least N tokens").
 */
import type { ChatCompletionRequest } from '../openai/chat-completion-request.js';
import type { CompletionRequest } from '../openai/completion-request.js';
import { contextLengthExceeded } from '../errors/gateway-error.js';
import { contentText, tokenLowerBound, tokenUpperBound, type TokenCounters } from '../tokens/token-counter.js';
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

/** A lower bound on `countChat`: the framing and the messages' contents only. */
function chatLowerBound(request: ChatCompletionRequest): number {
  let bound = 3;
  for (const message of request.messages) bound += 3 + tokenLowerBound(contentText((message as { content?: unknown }).content));
  return bound;
}

export async function checkChatContextWindow(
  request: ChatCompletionRequest,
  model: ModelConfig,
  counters: TokenCounters,
): Promise<void> {
  const completion = request.max_completion_tokens ?? request.max_tokens ?? 0;
  const window = model.context_window;
  const lower = chatLowerBound(request);
  if (lower + completion > window) {
    throw contextLengthExceeded({ contextWindow: window, promptTokens: lower, completionTokens: completion, atLeast: true });
  }
  if (chatUpperBound(request) + completion <= window) return;
  const counter = await counters.get(model.tokenizer);
  const limit = window - completion;
  let prompt = await counter.countChatAsync(request.messages, request.tools, { limit });
  if (prompt <= limit && request.functions?.length) prompt += await counter.countAsync(JSON.stringify(request.functions), { limit: limit - prompt });
  if (prompt > limit) {
    throw contextLengthExceeded({ contextWindow: window, promptTokens: prompt, completionTokens: completion, atLeast: true });
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
  await checkPromptsFit(prompts, { window, completion, param: 'prompt' }, model, counters);
}

/**
 * Each prompt (a text or token ids) must fit the window with `completion` more tokens:
 * byte bound first, then the lower bound, then a count that stops past the limit.
 */
async function checkPromptsFit(
  prompts: Array<string | number[]>,
  fit: { window: number; completion: number; param: string },
  model: ModelConfig,
  counters: TokenCounters,
): Promise<void> {
  const { window, completion, param } = fit;
  const limit = window - completion;
  const refuse = (tokens: number, atLeast: boolean) =>
    contextLengthExceeded({ contextWindow: window, promptTokens: tokens, completionTokens: completion, param, atLeast });
  for (const prompt of prompts) {
    if (typeof prompt !== 'string' && prompt.length > limit) throw refuse(prompt.length, false);
    if (typeof prompt === 'string' && tokenLowerBound(prompt) > limit) throw refuse(tokenLowerBound(prompt), true);
  }
  const toCount = prompts.filter((prompt): prompt is string => typeof prompt === 'string' && tokenUpperBound(prompt) > limit);
  if (toCount.length === 0) return;
  const counter = await counters.get(model.tokenizer);
  for (const prompt of toCount) {
    const tokens = await counter.countAsync(prompt, { limit });
    if (tokens > limit) throw refuse(tokens, true);
  }
}

/** Each embedding input must fit the model's context window on its own (OpenAI refuses longer inputs). */
export async function checkEmbeddingContextWindow(inputs: Array<string | number[]>, model: ModelConfig, counters: TokenCounters): Promise<void> {
  await checkPromptsFit(inputs, { window: model.context_window, completion: 0, param: 'input' }, model, counters);
}
