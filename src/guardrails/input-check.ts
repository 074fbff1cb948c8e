/** Input guardrails: the size limit and the deny patterns, over all the text a request sends. */
import type { ChatCompletionRequest } from '../openai/chat-completion-request.js';
import type { CompletionRequest } from '../openai/completion-request.js';
import { contentText } from '../tokens/token-counter.js';
import { contentPolicyViolation, inputTooLarge } from './errors.js';
import { firstMatch, type GuardrailPolicy } from './policy.js';

/** The text of every message (content parts' text, tool results, tool-call arguments), one per line. */
export function chatInputText(request: ChatCompletionRequest): string {
  const pieces: string[] = [];
  for (const message of request.messages) {
    const text = contentText((message as { content?: unknown }).content);
    if (text) pieces.push(text);
    const calls = (message as { tool_calls?: Array<{ function?: { arguments?: unknown } }> }).tool_calls;
    for (const call of calls ?? []) if (typeof call.function?.arguments === 'string') pieces.push(call.function.arguments);
  }
  return pieces.join('\n');
}

/** The text prompts of a legacy completion (token-array prompts carry no text to check). */
export function completionInputText(request: CompletionRequest): string {
  const prompt: unknown = request.prompt;
  if (typeof prompt === 'string') return prompt;
  if (Array.isArray(prompt)) return prompt.filter((item): item is string => typeof item === 'string').join('\n');
  return '';
}

/** Throws 400 input_too_large or content_policy_violation; never quotes the input. */
export function checkInput(policy: GuardrailPolicy, text: string, param: string): void {
  if (policy.maxInputChars !== undefined && text.length > policy.maxInputChars) throw inputTooLarge(text.length, policy.maxInputChars, param);
  const rule = firstMatch(policy.denyInput, text);
  if (rule) throw contentPolicyViolation(`The input was refused by the guardrail rule ${rule.label}.`, param);
}
