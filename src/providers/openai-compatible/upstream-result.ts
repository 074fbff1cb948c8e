/**
 * Whole (non-streamed) upstream answers into ChatResult / CompletionResult. The parsed JSON is
 * freshly ours, so messages are normalized in place rather than copied; fields this server does
 * not know (e.g. vLLM's `reasoning_content`) stay on the message.
 */
import { randomUUID } from 'node:crypto';
import type { AssistantMessage } from '../../openai/responses.js';
import type { ChatResult, CompletionResult, ResultMetadata } from '../spec.js';
import { chatFinishReason, completionFinishReason, normalizeUsage } from './normalize-upstream.js';
import { upstreamInvalidResponse } from './upstream-error.js';
import type { UpstreamChatCompletion, UpstreamChatMessage, UpstreamCompletion, UpstreamToolCall } from './upstream-types.js';

export function toChatResult(body: Record<string, unknown>): ChatResult {
  const completion = body as UpstreamChatCompletion;
  const choices = completion.choices;
  if (!Array.isArray(choices)) throw upstreamInvalidResponse('The upstream answer has no choices.');
  const result: ChatResult = {
    ...metadataOf(completion),
    choices: new Array<ChatResult['choices'][number]>(choices.length),
    usage: normalizeUsage(completion.usage),
  };
  for (let position = 0; position < choices.length; position++) {
    const choice = choices[position] ?? {};
    const finishReason = choice.finish_reason;
    const message = assistantMessage(choice.message);
    result.choices[position] = {
      index: typeof choice.index === 'number' ? choice.index : position,
      message,
      finishReason:
        typeof finishReason === 'string' && finishReason !== ''
          ? chatFinishReason(finishReason)
          : message.tool_calls !== undefined
            ? 'tool_calls'
            : 'stop',
      logprobs: choice.logprobs ?? null,
    };
  }
  return result;
}

export function toCompletionResult(body: Record<string, unknown>): CompletionResult {
  const completion = body as UpstreamCompletion;
  const choices = completion.choices;
  if (!Array.isArray(choices)) throw upstreamInvalidResponse('The upstream answer has no choices.');
  const result: CompletionResult = {
    ...metadataOf(completion),
    choices: new Array<CompletionResult['choices'][number]>(choices.length),
    usage: normalizeUsage(completion.usage),
  };
  for (let position = 0; position < choices.length; position++) {
    const choice = choices[position] ?? {};
    result.choices[position] = {
      index: typeof choice.index === 'number' ? choice.index : position,
      text: typeof choice.text === 'string' ? choice.text : '',
      finishReason: completionFinishReason(choice.finish_reason),
      logprobs: choice.logprobs ?? null,
    };
  }
  return result;
}

function metadataOf(completion: UpstreamChatCompletion | UpstreamCompletion): ResultMetadata {
  return {
    id: typeof completion.id === 'string' ? completion.id : undefined,
    created: typeof completion.created === 'number' ? completion.created : undefined,
    systemFingerprint: completion.system_fingerprint,
    serviceTier: completion.service_tier,
  };
}

/** The upstream message, made to fit AssistantMessage (in place). */
function assistantMessage(upstream: UpstreamChatMessage | null | undefined): AssistantMessage {
  if (upstream === null || upstream === undefined || typeof upstream !== 'object') {
    return { role: 'assistant', content: null, refusal: null };
  }
  upstream.role = 'assistant';
  if (typeof upstream.content !== 'string') upstream.content = null;
  if (typeof upstream.refusal !== 'string') upstream.refusal = null;
  const toolCalls = upstream.tool_calls;
  if (Array.isArray(toolCalls) && toolCalls.length > 0) {
    for (let position = 0; position < toolCalls.length; position++) normalizeToolCall(toolCalls[position], position);
  } else if (toolCalls !== undefined) {
    delete upstream.tool_calls;
  }
  const functionCall = upstream.function_call;
  if (functionCall === null || (functionCall !== undefined && typeof functionCall !== 'object')) delete upstream.function_call;
  else if (functionCall !== undefined) {
    functionCall.name ??= '';
    if (typeof functionCall.arguments !== 'string') functionCall.arguments = JSON.stringify(functionCall.arguments ?? {});
  }
  if (upstream.annotations === null) delete upstream.annotations;
  return upstream as unknown as AssistantMessage;
}

/** Some servers leave out the id or type, or send arguments as an object: OpenAI's shape back. */
function normalizeToolCall(upstream: UpstreamToolCall | undefined, position: number): void {
  if (upstream === undefined || upstream === null || typeof upstream !== 'object') {
    throw upstreamInvalidResponse(`The upstream sent an empty tool call at position ${position}.`);
  }
  if (typeof upstream.id !== 'string' || upstream.id === '') upstream.id = `call_${randomUUID().replaceAll('-', '')}`;
  upstream.type = 'function';
  const functionCall = (upstream.function ??= {});
  if (typeof functionCall.name !== 'string') functionCall.name = '';
  if (typeof functionCall.arguments !== 'string') functionCall.arguments = JSON.stringify(functionCall.arguments ?? {});
  delete upstream.index;
}
