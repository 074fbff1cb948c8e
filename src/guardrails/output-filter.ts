/**
 * Output guardrails: the deny_output patterns. A choice whose output matches is cut, like
 * OpenAI's content filter: `finish_reason: "content_filter"` and no content. In a stream the
 * text of each choice is accumulated and checked at every part; the part that makes a pattern
 * match is never sent, the choice ends there with `content_filter`.
 */
import type { ChatResult, CompletionResult, StreamPart } from '../providers/spec.js';
import type { JsonSchema } from '../providers/mock/json-schema-ref.js';
import { invalidModelOutput } from './errors.js';
import { jsonAnswerProblem } from './json-output.js';
import { firstMatch, type GuardRule } from './policy.js';

/** All the text of a chat choice's message: content, refusal, tool-call and function-call arguments. */
export function chatChoiceTexts(message: ChatResult['choices'][number]['message']): string[] {
  const texts: string[] = [];
  if (typeof message.content === 'string') texts.push(message.content);
  if (typeof message.refusal === 'string') texts.push(message.refusal);
  for (const call of message.tool_calls ?? []) texts.push(call.function.arguments);
  if (message.function_call) texts.push(message.function_call.arguments);
  return texts;
}

/** The result with every choice matching a deny rule emptied and finished by `content_filter`. */
export function filterChatResult(result: ChatResult, rules: GuardRule[], blocked: (index: number) => boolean = () => false): ChatResult {
  return {
    ...result,
    choices: result.choices.map((choice) => {
      const hit = blocked(choice.index) || chatChoiceTexts(choice.message).some((text) => firstMatch(rules, text) !== undefined);
      return hit ? { index: choice.index, message: { role: 'assistant', content: null, refusal: null }, finishReason: 'content_filter', logprobs: null } : choice;
    }),
  };
}

export function filterCompletionResult(result: CompletionResult, rules: GuardRule[]): CompletionResult {
  return {
    ...result,
    choices: result.choices.map((choice) =>
      firstMatch(rules, choice.text) ? { index: choice.index, text: '', finishReason: 'content_filter', logprobs: null } : choice,
    ),
  };
}

function streamedPiece(part: StreamPart): { key: string; text: string } | undefined {
  switch (part.type) {
    case 'text-delta':
      return { key: `${part.choice}`, text: part.text };
    case 'refusal-delta':
      return { key: `${part.choice}:refusal`, text: part.text };
    case 'tool-call-delta':
      return { key: `${part.choice}:tool:${part.index}`, text: part.argumentsDelta };
    case 'function-call-delta':
      return { key: `${part.choice}:function`, text: part.argumentsDelta };
    default:
      return undefined;
  }
}

export interface StreamGuardOptions {
  rules: GuardRule[];
  /** How many choices the stream has (`n`): once all are cut, the stream stops (the provider call is aborted). */
  choices: number;
  /** Check each choice's text against this schema at the end; invalid: the stream ends with an SSE error frame. */
  schema?: JsonSchema;
}

export async function* guardStream(parts: AsyncIterable<StreamPart>, options: StreamGuardOptions): AsyncGenerator<StreamPart> {
  const texts = new Map<string, string>();
  const cut = new Set<number>();
  const finished = new Map<number, string>();
  for await (const part of parts) {
    if ('choice' in part) {
      if (cut.has(part.choice)) continue;
      const piece = streamedPiece(part);
      if (piece) {
        const text = (texts.get(piece.key) ?? '') + piece.text;
        texts.set(piece.key, text);
        if (options.rules.length > 0 && firstMatch(options.rules, text)) {
          cut.add(part.choice);
          yield { type: 'finish', choice: part.choice, reason: 'content_filter' };
          if (cut.size >= options.choices) return;
          continue;
        }
      }
      if (part.type === 'finish') finished.set(part.choice, part.reason);
    }
    yield part;
  }
  if (options.schema !== undefined) {
    for (const [choice, reason] of [...finished].sort((a, b) => a[0] - b[0])) {
      if (reason !== 'stop' || cut.has(choice)) continue;
      const problem = jsonAnswerProblem(texts.get(`${choice}`) ?? '', options.schema);
      if (problem) throw invalidModelOutput(`The model's answer does not follow the requested JSON schema (choice ${choice}: ${problem}).`);
    }
  }
}
