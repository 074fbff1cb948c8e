/**
 * What `stop` and `max_tokens` do to the mock's answer: the text is cut before the first
 * occurrence of any stop sequence (finish reason `stop`, sequence not included), then, if
 * still longer than the token limit, cut to that many tokens of the model's tokenizer
 * (finish reason `length`; a character split across the limit is left out whole).
 */
import type { TokenCounter } from '../../tokens/token-counter.js';
import { completePrefix } from './token-decoding.js';

export interface LimitedText {
  text: string;
  /** The tokens of `text`: their count is the usage. */
  tokens: number[];
  finishReason: 'stop' | 'length';
}

/** The request's `stop` as a list, without empty strings (which would stop everything). */
export function stopSequences(stop: string | string[] | null | undefined): string[] {
  if (stop === null || stop === undefined) return [];
  return (typeof stop === 'string' ? [stop] : stop).filter((sequence) => sequence.length > 0);
}

/** The text before the earliest occurrence of any of the stop sequences. */
export function cutAtStop(text: string, stops: string[]): string {
  let end = text.length;
  for (const stop of stops) {
    const index = text.indexOf(stop);
    if (index !== -1 && index < end) end = index;
  }
  return text.slice(0, end);
}

export function limitText(
  counter: TokenCounter,
  text: string,
  limits: { stop: string[]; maxTokens: number | undefined },
): LimitedText {
  const beforeStop = cutAtStop(text, limits.stop);
  return limitTokens(counter, beforeStop, counter.encode(beforeStop), limits.maxTokens);
}

/**
 * `limitText` for answers of any size: encodes only as far as the limit needs, yielding to
 * the event loop as it goes (an echo of a large prompt). Same result.
 */
export async function limitTextAsync(
  counter: TokenCounter,
  text: string,
  limits: { stop: string[]; maxTokens: number | undefined },
): Promise<LimitedText> {
  const beforeStop = cutAtStop(text, limits.stop);
  const tokens = await counter.encodeAsync(beforeStop, limits.maxTokens === undefined ? {} : { limit: limits.maxTokens });
  return limitTokens(counter, beforeStop, tokens, limits.maxTokens);
}

/** `tokens`: the encoding of `beforeStop`, or a prefix of it longer than `maxTokens`. */
function limitTokens(counter: TokenCounter, beforeStop: string, tokens: number[], maxTokens: number | undefined): LimitedText {
  if (maxTokens === undefined || tokens.length <= maxTokens) {
    return { text: beforeStop, tokens, finishReason: 'stop' };
  }
  const prefix = completePrefix(counter, tokens.slice(0, maxTokens));
  return { text: prefix.text, tokens: prefix.tokens, finishReason: 'length' };
}
