/**
 * Deterministic log probabilities for the mock's tokens: every chosen token has logprob 0
 * (certain); when top alternatives are asked for, the chosen token comes first and fixed
 * filler tokens follow with logprobs -10, -11, -12, …
 */
import type { CompletionLogprobs, TokenLogprob, TopLogprob } from '../../openai/responses.js';
import { codePointLength } from './json-schema-check.js';
import type { TokenPiece } from './token-decoding.js';

export const chosenLogprob = 0;
const firstAlternativeLogprob = -10;

const fillerTokens = [
  ' the', ' a', ' and', ',', '.', ' of', ' to', ' in', ' is', ' it', ' that', ' for',
  ' on', ' with', ' as', ' was', ' at', ' by', ' this', ' I', ' you', '\n', ' be', ' or',
];

/** `count` alternatives to `token`: the token itself first, then filler tokens. */
function topAlternatives(token: string, count: number): Array<{ token: string; logprob: number }> {
  if (count <= 0) return [];
  const fillers = fillerTokens.filter((filler) => filler !== token).slice(0, count - 1);
  return [
    { token, logprob: chosenLogprob },
    ...fillers.map((filler, rank) => ({ token: filler, logprob: firstAlternativeLogprob - rank })),
  ];
}

function utf8Bytes(text: string): number[] {
  return [...Buffer.from(text, 'utf8')];
}

/** `choices[].logprobs.content` entries of a chat completion, one per token piece. */
export function chatTokenLogprobs(pieces: TokenPiece[], topCount: number): TokenLogprob[] {
  return pieces.map((piece) => ({
    token: piece.text,
    logprob: chosenLogprob,
    bytes: utf8Bytes(piece.text),
    top_logprobs: topAlternatives(piece.text, topCount).map(
      (alternative): TopLogprob => ({ ...alternative, bytes: utf8Bytes(alternative.token) }),
    ),
  }));
}

/**
 * `choices[].logprobs` of a legacy completion. `text_offset` counts code points from
 * `startOffset`; the first `unscoredCount` pieces (the very first token of an echoed
 * prompt, which nothing precedes) get null, as OpenAI sends.
 */
export function completionLogprobs(
  pieces: TokenPiece[],
  topCount: number,
  options: { startOffset: number; unscoredCount: number },
): CompletionLogprobs {
  const result: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  let offset = options.startOffset;
  pieces.forEach((piece, index) => {
    const scored = index >= options.unscoredCount;
    result.tokens.push(piece.text);
    result.token_logprobs.push(scored ? chosenLogprob : null);
    result.top_logprobs?.push(scored ? Object.fromEntries(topAlternatives(piece.text, topCount).map((entry) => [entry.token, entry.logprob])) : null);
    result.text_offset.push(offset);
    offset += codePointLength(piece.text);
  });
  return result;
}

/** Entries `start` to `end` (exclusive) of completion logprobs, for one streamed part. */
export function sliceCompletionLogprobs(logprobs: CompletionLogprobs, start: number, end: number): CompletionLogprobs {
  return {
    tokens: logprobs.tokens.slice(start, end),
    token_logprobs: logprobs.token_logprobs.slice(start, end),
    top_logprobs: logprobs.top_logprobs?.slice(start, end) ?? null,
    text_offset: logprobs.text_offset.slice(start, end),
  };
}
