/**
 * Turns OpenAI chat messages into node-llama-cpp chat history, and refuses what the
 * llama-cpp provider cannot do (images) with a 400. An assistant turn's tool calls (or
 * legacy function call) become function-call items carrying their results from the `tool`
 * (or `function`) messages that answer them, so the model's chat template renders calls
 * and results in its own syntax. response_format is handled by structured-output.ts, tools
 * by tool-plan.ts.
 */
import type { ChatHistoryItem, ChatModelFunctionCall, ChatModelResponse } from 'node-llama-cpp';
import type { ChatCompletionRequest, ChatMessage } from '../../openai/chat-completion-request.js';
import { invalidRequest } from '../../errors/gateway-error.js';

export function checkChatSupported(request: ChatCompletionRequest): void {
  if (request.logprobs === true && (request.tools?.length || request.functions?.length)) {
    if (request.tool_choice !== 'none' && request.function_call !== 'none') {
      throw invalidRequest('The llama-cpp provider cannot report logprobs together with function calling.', 'logprobs');
    }
  }
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

/** The parsed arguments of a call in the history (the text itself when it is not JSON). */
function parsedArguments(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function functionCallItem(name: string, argumentsText: string, result: string | undefined): ChatModelFunctionCall {
  return { type: 'functionCall', name, params: parsedArguments(argumentsText), result: result === undefined ? '' : parsedArguments(result) };
}

/**
 * system/developer → system, user → user, assistant → model (its tool calls as function-call
 * items with their results); consecutive system texts are merged; tool and function messages
 * are folded into the call they answer.
 */
export function toChatHistory(messages: ChatMessage[]): ChatHistoryItem[] {
  const toolResults = new Map<string, string>();
  messages.forEach((message, index) => {
    if (message.role === 'tool') toolResults.set(message.tool_call_id, partsText(message.content, index));
  });
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
      case 'assistant': {
        const response: ChatModelResponse['response'] = [];
        const text = partsText(message.content, index) || (message.refusal ?? '');
        if (text) response.push(text);
        for (const call of message.tool_calls ?? []) response.push(functionCallItem(call.function.name, call.function.arguments, toolResults.get(call.id)));
        if (message.function_call) {
          const name = message.function_call.name;
          const answer = messages.slice(index + 1).find((later) => later.role === 'function' && later.name === name);
          response.push(functionCallItem(name, message.function_call.arguments, answer?.role === 'function' ? (answer.content ?? '') : undefined));
        }
        if (response.length === 0) response.push('');
        history.push({ type: 'model', response });
        return;
      }
      case 'tool':
      case 'function':
        return;
    }
  });
  return history;
}
