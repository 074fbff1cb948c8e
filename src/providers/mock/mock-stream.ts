/**
 * Streams a finished mock answer as provider stream parts: a `metadata` part, then for
 * each choice in turn its text word by word (`text-delta`, with the logprobs of the tokens
 * ending in each word), or its calls (`tool-call-delta` / `function-call-delta`: a first
 * fragment with id and name, then the arguments token by token), then its `finish`; last,
 * one `usage` part. Parts are `delayMs` apart, and the stream stops as soon as the signal
 * aborts (throwing the signal's reason).
 */
import type { TokenCounter } from '../../tokens/token-counter.js';
import type { ChatResult, CompletionResult, StreamPart } from '../spec.js';
import { abortableDelay } from '../../util/abortable-delay.js';
import { sliceCompletionLogprobs } from './fake-logprobs.js';
import { tokenPieces } from './token-decoding.js';
import { wordParts } from './word-parts.js';

export interface StreamOptions {
  counter: TokenCounter;
  /** Pause between parts (the model's `stream_delay_ms`). */
  delayMs: number;
  signal: AbortSignal;
}

/** Waits `delayMs` before every content part but the first; throws once the signal aborts. */
class Pacer {
  #started = false;

  constructor(private readonly options: StreamOptions) {}

  async next(): Promise<void> {
    if (this.#started && this.options.delayMs > 0) await abortableDelay(this.options.delayMs, this.options.signal);
    this.options.signal.throwIfAborted();
    this.#started = true;
  }
}

/** The arguments JSON in pieces of one token each (so a client sees them arrive in fragments). */
function argumentPieces(counter: TokenCounter, argumentsText: string): string[] {
  return tokenPieces(counter, counter.encode(argumentsText)).map((piece) => piece.text);
}

export async function* chatStreamParts(result: ChatResult, options: StreamOptions): AsyncGenerator<StreamPart> {
  const pacer = new Pacer(options);
  options.signal.throwIfAborted();
  yield { type: 'metadata', systemFingerprint: result.systemFingerprint };
  for (const choice of result.choices) {
    const { message, index } = choice;
    if (message.tool_calls) {
      for (const [callIndex, call] of message.tool_calls.entries()) {
        await pacer.next();
        yield { type: 'tool-call-delta', choice: index, index: callIndex, id: call.id, name: call.function.name, argumentsDelta: '' };
        for (const piece of argumentPieces(options.counter, call.function.arguments)) {
          await pacer.next();
          yield { type: 'tool-call-delta', choice: index, index: callIndex, argumentsDelta: piece };
        }
      }
    } else if (message.function_call) {
      await pacer.next();
      yield { type: 'function-call-delta', choice: index, name: message.function_call.name, argumentsDelta: '' };
      for (const piece of argumentPieces(options.counter, message.function_call.arguments)) {
        await pacer.next();
        yield { type: 'function-call-delta', choice: index, argumentsDelta: piece };
      }
    } else if (message.content) {
      const entries = choice.logprobs?.content ?? null;
      for (const part of wordParts(message.content, entries?.map((entry) => entry.token))) {
        await pacer.next();
        yield {
          type: 'text-delta',
          choice: index,
          text: part.text,
          ...(entries ? { logprobs: { content: entries.slice(part.pieceStart, part.pieceEnd), refusal: null } } : {}),
        };
      }
    }
    options.signal.throwIfAborted();
    yield { type: 'finish', choice: index, reason: choice.finishReason };
  }
  options.signal.throwIfAborted();
  yield { type: 'usage', usage: result.usage };
}

export async function* completionStreamParts(result: CompletionResult, options: StreamOptions): AsyncGenerator<StreamPart> {
  const pacer = new Pacer(options);
  options.signal.throwIfAborted();
  yield { type: 'metadata', systemFingerprint: result.systemFingerprint };
  for (const choice of result.choices) {
    const logprobs = choice.logprobs;
    for (const part of wordParts(choice.text, logprobs?.tokens)) {
      await pacer.next();
      yield {
        type: 'text-delta',
        choice: choice.index,
        text: part.text,
        ...(logprobs ? { logprobs: sliceCompletionLogprobs(logprobs, part.pieceStart, part.pieceEnd) } : {}),
      };
    }
    options.signal.throwIfAborted();
    yield { type: 'finish', choice: choice.index, reason: choice.finishReason };
  }
  options.signal.throwIfAborted();
  yield { type: 'usage', usage: result.usage };
}
