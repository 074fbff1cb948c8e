/**
 * Turns OpenAI chat messages into node-llama-cpp chat history, and refuses what the
 * llama-cpp provider cannot do yet (tools, logprobs, images) with a 400. response_format is
 * handled by structured-output.ts.
 */
import type { ChatHistoryItem } from 'node-llama-cpp';
import type { ChatCompletionRequest, ChatMessage } from '../../openai/chat-completion-request.js';
import { invalidRequest } from '../../errors/gateway-error.js';

function notYet(what: string, param: string) {
  return invalidRequest(`The llama-cpp provider does not support ${what} yet.`, param);
}

export function checkChatSupported(request: ChatCompletionRequest): void {
  if (request.tools?.length && request.tool_choice !== 'none') throw notYet('tools', 'tools');
  if (request.functions?.length && request.function_call !== 'none') throw notYet('functions', 'functions');
  if (request.logprobs === true) throw notYet('logprobs', 'logprobs');
}

function partsText(content: unknown, index: number): string {
  if (typeof content === 'string') return content;
  if (content === null || content === undefined) return '';
  if (!Array.isArray(content)) return '';
  return content
    .map((part: { type: string; text?: string; refusal?: string }, partIndex) => {
      if (part.type === 'text') return part.text ?? '';
      if (part.type === 'refusal') return part.refusal ?? '';
      if (part.type === 'image_url') {
        throw invalidRequest(
          'The llama-cpp provider cannot take images: this model reads text only.',
          `messages[${index}].content[${partIndex}].type`,
          'image_input_not_supported',
        );
      }
      throw invalidRequest(`The llama-cpp provider cannot take '${part.type}' content parts.`, `messages[${index}].content[${partIndex}].type`);
    })
    .join('');
}

/** system/developer → system, user → user, assistant → model; consecutive system texts are merged. */
export function toChatHistory(messages: ChatMessage[]): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = [];
  messages.forEach((message, index) => {
    switch (message.role) {
      case 'system':
      case 'developer': {
        const text = partsText(message.content, index);
        const last = history.at(-1);
        if (last?.type === 'system') last.text = `${last.text}\n\n${text}`;
        else history.push({ type: 'system', text });
        return;
      }
      case 'user':
        history.push({ type: 'user', text: partsText(message.content, index) });
        return;
      case 'assistant':
        if (message.tool_calls?.length || message.function_call) {
          throw notYet('tool calls in the conversation', `messages[${index}]`);
        }
        history.push({ type: 'model', response: [partsText(message.content, index)] });
        return;
      case 'tool':
      case 'function':
        throw notYet(`'${message.role}' messages`, `messages[${index}].role`);
    }
  });
  return history;
}
