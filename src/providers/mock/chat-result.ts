/**
 * The mock's whole chat completion: the answer (see mock-reply.ts) limited by `stop` and
 * `max_completion_tokens`/`max_tokens` (else the model's `max_output_tokens`), repeated for
 * `n` choices (tool calls get fresh ids in each), with fake logprobs and usage counted
 * with the model's tokenizer.
 */
import type { ChatCompletionRequest, Tool } from '../../openai/chat-completion-request.js';
import type { AssistantMessage, ChatLogprobs } from '../../openai/responses.js';
import type { ModelConfig } from '../../config/schema.js';
import type { TokenCounter } from '../../tokens/token-counter.js';
import type { ChatResult } from '../spec.js';
import { chatTokenLogprobs } from './fake-logprobs.js';
import { chatAnswer, type ChatAnswer } from './mock-reply.js';
import { limitText, limitTextAsync, stopSequences, type LimitedText } from './text-limits.js';
import { tokenPieces } from './token-decoding.js';
import { toolCallId } from './tool-call-id.js';

/** `system_fingerprint` of every mock answer. */
export const mockSystemFingerprint = 'fp_mock';

/** The tools as the prompt counts them: `tools`, else the legacy `functions`. */
export function promptTools(request: ChatCompletionRequest): Tool[] | undefined {
  if (request.tools && request.tools.length > 0) return request.tools;
  if (request.functions && request.functions.length > 0) return request.functions.map((definition) => ({ type: 'function', function: definition }));
  return undefined;
}

function textLimits(request: ChatCompletionRequest, model: ModelConfig): { stop: string[]; maxTokens: number | undefined } {
  return { stop: stopSequences(request.stop), maxTokens: request.max_completion_tokens ?? request.max_tokens ?? model.max_output_tokens };
}

/** `promptTokens`: the prompt's count when the caller has it (counted without blocking); else counted here. */
export function chatResult(request: ChatCompletionRequest, model: ModelConfig, counter: TokenCounter, promptTokens?: number): ChatResult {
  const answer = chatAnswer(request);
  return buildChatResult(request, counter, answer, answer.kind === 'text' ? limitText(counter, answer.text, textLimits(request, model)) : undefined, promptTokens);
}

/**
 * `chatResult` for prompts of any size: the answer (an echo of the prompt) is encoded only as
 * far as its token limit needs, yielding to the event loop. `promptTokens` as counted by
 * the caller without blocking.
 */
export async function chatResultAsync(request: ChatCompletionRequest, model: ModelConfig, counter: TokenCounter, promptTokens: number): Promise<ChatResult> {
  const answer = chatAnswer(request);
  const limited = answer.kind === 'text' ? await limitTextAsync(counter, answer.text, textLimits(request, model)) : undefined;
  return buildChatResult(request, counter, answer, limited, promptTokens);
}

function buildChatResult(request: ChatCompletionRequest, counter: TokenCounter, answer: ChatAnswer, limited: LimitedText | undefined, promptTokens?: number): ChatResult {
  const choiceCount = request.n ?? 1;
  const choices: ChatResult['choices'] = [];
  let completionTokens = 0;

  if (answer.kind === 'text' && limited !== undefined) {
    const logprobs: ChatLogprobs | null = request.logprobs
      ? { content: chatTokenLogprobs(tokenPieces(counter, limited.tokens), request.top_logprobs ?? 0), refusal: null }
      : null;
    for (let index = 0; index < choiceCount; index++) {
      choices.push({
        index,
        message: { role: 'assistant', content: limited.text, refusal: null },
        finishReason: limited.finishReason,
        logprobs,
      });
    }
    completionTokens = limited.tokens.length * choiceCount;
  } else if (answer.kind !== 'text') {
    const calls = answer.kind === 'tool-calls' ? answer.calls : [answer.call];
    const callTokens = calls.reduce((total, call) => total + counter.count(call.name) + counter.count(call.arguments), 0);
    for (let index = 0; index < choiceCount; index++) {
      const message: AssistantMessage =
        answer.kind === 'tool-calls'
          ? {
              role: 'assistant',
              content: null,
              refusal: null,
              tool_calls: calls.map((call) => ({ id: toolCallId(), type: 'function', function: { name: call.name, arguments: call.arguments } })),
            }
          : { role: 'assistant', content: null, refusal: null, function_call: { name: answer.call.name, arguments: answer.call.arguments } };
      choices.push({
        index,
        message,
        finishReason: answer.kind === 'tool-calls' ? 'tool_calls' : 'function_call',
        logprobs: request.logprobs ? { content: null, refusal: null } : null,
      });
    }
    completionTokens = callTokens * choiceCount;
  }

  const prompt = promptTokens ?? counter.countChat(request.messages, promptTools(request));
  return {
    systemFingerprint: mockSystemFingerprint,
    choices,
    usage: { prompt_tokens: prompt, completion_tokens: completionTokens, total_tokens: prompt + completionTokens },
  };
}
