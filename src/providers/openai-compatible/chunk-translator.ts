/**
 * Turns parsed upstream stream chunks (`chat.completion.chunk` / `text_completion`) into
 * StreamParts, keeping the little state a stream needs: whether the metadata went out, which
 * tool calls already had their first fragment, which choices finished, the latest usage.
 *
 * It also repairs what OpenAI-compatible servers get wrong: tool-call ids and names repeated on
 * every fragment (kept on the first only), missing tool-call ids (made up), a finish_reason
 * sent twice (sent once), usage on every chunk (the last one wins, sent once at the end).
 */
import { randomUUID } from 'node:crypto';
import type { Usage } from '../../openai/responses.js';
import type { StreamPart } from '../spec.js';
import { chatFinishReason, completionFinishReason, normalizeUsage } from './normalize-upstream.js';
import type { UpstreamChatChunk, UpstreamCompletionChunk } from './upstream-types.js';

export type StreamKind = 'chat' | 'completion';

interface ChoiceState {
  /** The choice's opening (role) went out. */
  opened: boolean;
  finished: boolean;
  functionCallStarted: boolean;
  /** Tool-call positions whose first fragment went out. */
  startedToolCalls: boolean[] | undefined;
}

export class ChunkTranslator {
  private readonly kind: StreamKind;
  private metadataSent = false;
  private readonly choices: ChoiceState[] = [];
  private openChoices = 0;
  private usage: Usage | undefined;

  constructor(kind: StreamKind) {
    this.kind = kind;
  }

  /** True once at least one choice was seen and every seen choice finished. */
  get finished(): boolean {
    return this.choices.length > 0 && this.openChoices === 0;
  }

  /** Appends the parts of one chunk to `parts`. */
  translate(chunk: UpstreamChatChunk & UpstreamCompletionChunk, parts: StreamPart[]): void {
    if (!this.metadataSent) {
      this.metadataSent = true;
      parts.push({
        type: 'metadata',
        id: typeof chunk.id === 'string' ? chunk.id : undefined,
        created: typeof chunk.created === 'number' ? chunk.created : undefined,
        systemFingerprint: chunk.system_fingerprint,
        serviceTier: chunk.service_tier,
      });
    }
    const choices = chunk.choices;
    if (Array.isArray(choices)) {
      if (this.kind === 'chat') this.translateChatChoices(choices, parts);
      else this.translateCompletionChoices(choices, parts);
    }
    const usage = chunk.usage;
    if (usage !== undefined && usage !== null && typeof usage === 'object') this.usage = normalizeUsage(usage);
  }

  /** At the end of the stream: the usage part, when the upstream sent usage. */
  flush(parts: StreamPart[]): void {
    if (this.usage === undefined) return;
    parts.push({ type: 'usage', usage: this.usage });
    this.usage = undefined;
  }

  private translateChatChoices(choices: NonNullable<UpstreamChatChunk['choices']>, parts: StreamPart[]): void {
    for (let position = 0; position < choices.length; position++) {
      const choice = choices[position];
      if (choice === undefined || choice === null) continue;
      const index = typeof choice.index === 'number' ? choice.index : position;
      const state = this.choiceState(index);
      const delta = choice.delta;
      if (delta !== undefined && delta !== null) {
        const content = delta.content;
        // A role-only opening goes out at once, so the client's first byte does not wait for
        // the first token (which may come in a later network read).
        if (delta.role === 'assistant' && !state.opened && (content === '' || content === null || content === undefined) && !delta.tool_calls && !delta.function_call && !delta.refusal) {
          state.opened = true;
          parts.push({ type: 'role', choice: index, content: content === null ? null : '' });
        }
        if (!state.opened && (typeof content === 'string' || delta.tool_calls || delta.function_call || delta.refusal)) state.opened = true;
        if (typeof content === 'string' && content !== '') {
          const logprobs = choice.logprobs;
          parts.push(
            logprobs === undefined || logprobs === null
              ? { type: 'text-delta', choice: index, text: content }
              : { type: 'text-delta', choice: index, text: content, logprobs },
          );
        }
        const refusal = delta.refusal;
        if (typeof refusal === 'string' && refusal !== '') parts.push({ type: 'refusal-delta', choice: index, text: refusal });
        const toolCalls = delta.tool_calls;
        if (Array.isArray(toolCalls)) this.translateToolCalls(index, state, toolCalls, parts);
        const functionCall = delta.function_call;
        if (functionCall !== undefined && functionCall !== null) {
          const argumentsDelta = typeof functionCall.arguments === 'string' ? functionCall.arguments : '';
          if (!state.functionCallStarted) {
            state.functionCallStarted = true;
            parts.push({ type: 'function-call-delta', choice: index, name: functionCall.name ?? '', argumentsDelta });
          } else if (argumentsDelta !== '') {
            parts.push({ type: 'function-call-delta', choice: index, argumentsDelta });
          }
        }
      }
      this.finishChoice(index, state, choice.finish_reason, parts);
    }
  }

  private translateToolCalls(
    choiceIndex: number,
    state: ChoiceState,
    toolCalls: NonNullable<NonNullable<NonNullable<UpstreamChatChunk['choices']>[number]['delta']>['tool_calls']>,
    parts: StreamPart[],
  ): void {
    const started = (state.startedToolCalls ??= []);
    for (let position = 0; position < toolCalls.length; position++) {
      const toolCall = toolCalls[position];
      if (toolCall === undefined || toolCall === null) continue;
      const index = typeof toolCall.index === 'number' ? toolCall.index : position;
      const fragmentArguments = toolCall.function?.arguments;
      const argumentsDelta = typeof fragmentArguments === 'string' ? fragmentArguments : '';
      if (started[index] !== true) {
        started[index] = true;
        const id = typeof toolCall.id === 'string' && toolCall.id !== '' ? toolCall.id : `call_${randomUUID().replaceAll('-', '')}`;
        parts.push({ type: 'tool-call-delta', choice: choiceIndex, index, id, name: toolCall.function?.name ?? '', argumentsDelta });
      } else if (argumentsDelta !== '') {
        parts.push({ type: 'tool-call-delta', choice: choiceIndex, index, argumentsDelta });
      }
    }
  }

  private translateCompletionChoices(choices: NonNullable<UpstreamCompletionChunk['choices']>, parts: StreamPart[]): void {
    for (let position = 0; position < choices.length; position++) {
      const choice = choices[position];
      if (choice === undefined || choice === null) continue;
      const index = typeof choice.index === 'number' ? choice.index : position;
      const state = this.choiceState(index);
      const text = choice.text;
      if (typeof text === 'string' && text !== '') {
        const logprobs = choice.logprobs;
        parts.push(
          logprobs === undefined || logprobs === null
            ? { type: 'text-delta', choice: index, text }
            : { type: 'text-delta', choice: index, text, logprobs },
        );
      }
      this.finishChoice(index, state, choice.finish_reason, parts);
    }
  }

  private finishChoice(index: number, state: ChoiceState, reason: string | null | undefined, parts: StreamPart[]): void {
    if (typeof reason !== 'string' || reason === '' || state.finished) return;
    state.finished = true;
    this.openChoices--;
    parts.push({ type: 'finish', choice: index, reason: this.kind === 'chat' ? chatFinishReason(reason) : completionFinishReason(reason) });
  }

  private choiceState(index: number): ChoiceState {
    let state = this.choices[index];
    if (state === undefined) {
      state = { opened: false, finished: false, functionCallStarted: false, startedToolCalls: undefined };
      this.choices[index] = state;
      this.openChoices++;
    }
    return state;
  }
}
