/**
 * Token counts of training examples with OpenAI's BPE encodings (gpt-tokenizer through
 * src/tokens/token-counter.ts), for base models that Chatgate has no tokenizer of its own
 * for: the prompt formula of the cookbook (per-message framing, tool definitions) for the
 * example's tokens, and the assistant messages with weight 1 (content, refusal and calls,
 * plus one end-of-turn token each) for the trained ones.
 */
import type { ChatMessage, Tool } from '../../openai/chat-completion-request.js';
import type { EncodingName, TokenCounter, TokenCounters } from '../../tokens/token-counter.js';
import { contentText, isTrained, type TrainingExample } from './example-types.js';

export interface GptTokenCount {
  tokens: number;
  trainedTokens: number;
}

/** The example's messages as chat messages (without the fine-tuning-only `weight`). */
function chatMessages(example: TrainingExample): ChatMessage[] {
  return example.messages.map((message) => {
    if (message.role !== 'assistant' || message.weight === undefined) return message as ChatMessage;
    const { weight: _weight, ...rest } = message;
    return rest as ChatMessage;
  });
}

function definitions(example: TrainingExample): Tool[] | undefined {
  const tools = [...(example.tools ?? []), ...(example.functions ?? []).map((definition) => ({ type: 'function' as const, function: definition }))];
  return tools.length > 0 ? (tools as Tool[]) : undefined;
}

export function countExampleTokens(counter: TokenCounter, example: TrainingExample): GptTokenCount {
  let trainedTokens = 0;
  for (const message of example.messages) {
    if (message.role !== 'assistant' || !isTrained(message)) continue;
    trainedTokens += 1 + counter.count(contentText(message.content) || (message.refusal ?? ''));
    for (const call of message.tool_calls ?? []) trainedTokens += 3 + counter.count(call.function.name) + counter.count(call.function.arguments);
    if (message.function_call) trainedTokens += 3 + counter.count(message.function_call.name) + counter.count(message.function_call.arguments);
  }
  return { tokens: counter.countChat(chatMessages(example), definitions(example)), trainedTokens };
}

/** A `countTokens` for validateDataset with the named encoding (loaded once by `counters`). */
export async function gptTokenCounter(counters: TokenCounters, encoding: EncodingName): Promise<(example: TrainingExample) => GptTokenCount> {
  const counter = await counters.get(encoding);
  return (example) => countExampleTokens(counter, example);
}
