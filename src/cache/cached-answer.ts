/**
 * What the response cache stores: the provider's result (ChatResult / CompletionResult), not
 * rendered bytes, so that one entry answers streamed and non-streamed requests alike. A
 * streamed answer is collected back into a result as it passes (`AnswerCollector`), and a
 * cached result is replayed as stream parts (`replayParts`) through the live renderers:
 * text word by word, tool calls as a first fragment with id and name then the arguments,
 * a finish per choice, the usage last.
 */
import type { ChatFinishReason, ChatLogprobs, CompletionLogprobs, TokenLogprob, Usage } from '../openai/responses.js';
import type { ChatResult, CompletionResult, StreamPart } from '../providers/spec.js';
import { sliceCompletionLogprobs } from '../providers/mock/fake-logprobs.js';
import { wordParts } from '../providers/mock/word-parts.js';

export type CachedAnswer = { kind: 'chat'; result: ChatResult } | { kind: 'completion'; result: CompletionResult };

/** Finish reasons of a complete, successful answer: only such answers are cached. */
const CACHEABLE_REASONS = new Set<string>(['stop', 'length', 'tool_calls', 'function_call']);

export function isCacheable(answer: CachedAnswer): boolean {
  const choices = answer.result.choices as Array<{ finishReason: string }>;
  return choices.length > 0 && choices.every((choice) => CACHEABLE_REASONS.has(choice.finishReason));
}

/** The usage reported on a hit: the same counts, every prompt token marked as cached. */
export function hitUsage(usage: Usage): Usage {
  return { ...usage, prompt_tokens_details: { ...usage.prompt_tokens_details, cached_tokens: usage.prompt_tokens } };
}

/** Parses a stored entry; null when it is not a well-formed answer of the expected kind. */
export function parseCachedAnswer(text: string, kind: CachedAnswer['kind']): CachedAnswer | null {
  try {
    const value = JSON.parse(text) as CachedAnswer;
    if (value?.kind !== kind || !Array.isArray(value.result?.choices) || typeof value.result.usage?.prompt_tokens !== 'number') return null;
    return value;
  } catch {
    return null;
  }
}

interface ChoiceParts {
  text: string[];
  refusal: string[] | null;
  toolCalls: Map<number, { id: string; name: string; arguments: string[] }>;
  functionCall: { name: string; arguments: string[] } | null;
  chatLogprobs: TokenLogprob[] | null;
  completionLogprobs: CompletionLogprobs | null;
  finishReason: ChatFinishReason | null;
}

/** Collects the parts of a stream back into the result they stand for. */
export class AnswerCollector {
  readonly #choices = new Map<number, ChoiceParts>();
  #metadata: { systemFingerprint?: string | null; serviceTier?: string | null } = {};
  #usage: Usage | null = null;

  #choice(index: number): ChoiceParts {
    let choice = this.#choices.get(index);
    if (!choice) {
      choice = { text: [], refusal: null, toolCalls: new Map(), functionCall: null, chatLogprobs: null, completionLogprobs: null, finishReason: null };
      this.#choices.set(index, choice);
    }
    return choice;
  }

  add(part: StreamPart): void {
    switch (part.type) {
      case 'metadata':
        if (part.systemFingerprint !== undefined) this.#metadata.systemFingerprint = part.systemFingerprint;
        if (part.serviceTier !== undefined) this.#metadata.serviceTier = part.serviceTier;
        return;
      case 'role':
        this.#choice(part.choice);
        return;
      case 'text-delta': {
        const choice = this.#choice(part.choice);
        choice.text.push(part.text);
        const logprobs = part.logprobs;
        if (logprobs && 'tokens' in logprobs) {
          const merged = (choice.completionLogprobs ??= { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] });
          merged.tokens.push(...logprobs.tokens);
          merged.token_logprobs.push(...logprobs.token_logprobs);
          merged.text_offset.push(...logprobs.text_offset);
          if (merged.top_logprobs) {
            if (logprobs.top_logprobs) merged.top_logprobs.push(...logprobs.top_logprobs);
            else merged.top_logprobs = null;
          }
        } else if (logprobs && 'content' in logprobs && logprobs.content) {
          (choice.chatLogprobs ??= []).push(...logprobs.content);
        }
        return;
      }
      case 'refusal-delta':
        (this.#choice(part.choice).refusal ??= []).push(part.text);
        return;
      case 'tool-call-delta': {
        const calls = this.#choice(part.choice).toolCalls;
        let call = calls.get(part.index);
        if (!call) {
          call = { id: part.id ?? '', name: part.name ?? '', arguments: [] };
          calls.set(part.index, call);
        }
        if (part.id) call.id = part.id;
        if (part.name) call.name = part.name;
        call.arguments.push(part.argumentsDelta);
        return;
      }
      case 'function-call-delta': {
        const choice = this.#choice(part.choice);
        choice.functionCall ??= { name: '', arguments: [] };
        if (part.name) choice.functionCall.name = part.name;
        choice.functionCall.arguments.push(part.argumentsDelta);
        return;
      }
      case 'finish':
        this.#choice(part.choice).finishReason = part.reason;
        return;
      case 'usage':
        this.#usage = part.usage;
        return;
    }
  }

  #complete(): Array<[number, ChoiceParts & { finishReason: ChatFinishReason }]> | null {
    if (!this.#usage || this.#choices.size === 0) return null;
    const entries = [...this.#choices.entries()].sort(([a], [b]) => a - b);
    if (entries.some(([, choice]) => choice.finishReason === null)) return null;
    return entries as Array<[number, ChoiceParts & { finishReason: ChatFinishReason }]>;
  }

  chatResult(): ChatResult | null {
    const entries = this.#complete();
    if (!entries) return null;
    const result: ChatResult = {
      choices: entries.map(([index, choice]) => {
        const hasCalls = choice.toolCalls.size > 0 || choice.functionCall !== null;
        const text = choice.text.join('');
        const message: ChatResult['choices'][number]['message'] = {
          role: 'assistant',
          content: text === '' && (hasCalls || choice.refusal !== null) ? null : text,
          refusal: choice.refusal === null ? null : choice.refusal.join(''),
        };
        if (choice.toolCalls.size > 0) {
          message.tool_calls = [...choice.toolCalls.entries()]
            .sort(([a], [b]) => a - b)
            .map(([, call]) => ({ id: call.id, type: 'function' as const, function: { name: call.name, arguments: call.arguments.join('') } }));
        }
        if (choice.functionCall) message.function_call = { name: choice.functionCall.name, arguments: choice.functionCall.arguments.join('') };
        const logprobs: ChatLogprobs | null = choice.chatLogprobs ? { content: choice.chatLogprobs, refusal: null } : null;
        return { index, message, finishReason: choice.finishReason, logprobs };
      }),
      usage: this.#usage!,
    };
    if (this.#metadata.systemFingerprint !== undefined) result.systemFingerprint = this.#metadata.systemFingerprint;
    if (this.#metadata.serviceTier !== undefined) result.serviceTier = this.#metadata.serviceTier;
    return result;
  }

  completionResult(): CompletionResult | null {
    const entries = this.#complete();
    if (!entries) return null;
    const result: CompletionResult = {
      choices: entries.map(([index, choice]) => ({
        index,
        text: choice.text.join(''),
        finishReason: choice.finishReason === 'length' || choice.finishReason === 'content_filter' ? choice.finishReason : 'stop',
        logprobs: choice.completionLogprobs,
      })),
      usage: this.#usage!,
    };
    if (this.#metadata.systemFingerprint !== undefined) result.systemFingerprint = this.#metadata.systemFingerprint;
    return result;
  }
}

/** A cached result as stream parts (what a live stream of the same answer looks like). */
export async function* replayParts(answer: CachedAnswer, usage: Usage): AsyncGenerator<StreamPart> {
  const { result } = answer;
  yield { type: 'metadata', systemFingerprint: result.systemFingerprint ?? null, ...(result.serviceTier ? { serviceTier: result.serviceTier } : {}) };
  if (answer.kind === 'chat') {
    for (const choice of answer.result.choices) {
      const { message, index } = choice;
      if (message.refusal) {
        for (const word of wordParts(message.refusal)) yield { type: 'refusal-delta', choice: index, text: word.text };
      }
      if (message.content) {
        const entries = choice.logprobs?.content ?? null;
        for (const part of wordParts(message.content, entries?.map((entry) => entry.token))) {
          yield {
            type: 'text-delta',
            choice: index,
            text: part.text,
            ...(entries ? { logprobs: { content: entries.slice(part.pieceStart, part.pieceEnd), refusal: null } } : {}),
          };
        }
      } else if (message.content === '' && !message.tool_calls && !message.function_call && !message.refusal) {
        yield { type: 'role', choice: index, content: '' };
      }
      for (const [callIndex, call] of (message.tool_calls ?? []).entries()) {
        yield { type: 'tool-call-delta', choice: index, index: callIndex, id: call.id, name: call.function.name, argumentsDelta: '' };
        if (call.function.arguments) yield { type: 'tool-call-delta', choice: index, index: callIndex, argumentsDelta: call.function.arguments };
      }
      if (message.function_call) {
        yield { type: 'function-call-delta', choice: index, name: message.function_call.name, argumentsDelta: '' };
        if (message.function_call.arguments) yield { type: 'function-call-delta', choice: index, argumentsDelta: message.function_call.arguments };
      }
      yield { type: 'finish', choice: index, reason: choice.finishReason };
    }
  } else {
    for (const choice of answer.result.choices) {
      const logprobs = choice.logprobs;
      for (const part of wordParts(choice.text, logprobs?.tokens)) {
        yield {
          type: 'text-delta',
          choice: choice.index,
          text: part.text,
          ...(logprobs ? { logprobs: sliceCompletionLogprobs(logprobs, part.pieceStart, part.pieceEnd) } : {}),
        };
      }
      yield { type: 'finish', choice: choice.index, reason: choice.finishReason };
    }
  }
  yield { type: 'usage', usage };
}
