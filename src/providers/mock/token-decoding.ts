/**
 * Decoding tokens back to text, safely. gpt-tokenizer decodes byte-level tokens with one
 * shared streaming TextDecoder: tokens that end in the middle of a character leave bytes in
 * it, which then corrupt the next decode anywhere in the process. So every decode here is
 * followed by a reset (decoding a character that both encodings split into byte tokens),
 * and the reset's output tells whether bytes were left over, i.e. whether the tokens ended
 * on a character boundary.
 */
import type { TokenCounter } from '../../tokens/token-counter.js';

/** U+1D518: several byte-level tokens in cl100k_base and o200k_base alike. */
const resetCharacter = '\u{1D518}';

/** Empties the tokenizer's shared decoder; true when it was already empty. */
function resetDecoder(counter: TokenCounter): boolean {
  return counter.decode(counter.encode(resetCharacter)) === resetCharacter;
}

/** One piece of text and the number of tokens it is made of (one, or more for a character split across tokens). */
export interface TokenPiece {
  text: string;
  tokens: number;
}

/**
 * The text of the tokens, and whether they ended on a character boundary (an incomplete
 * last character is left out of `text`). Throws for a token id the encoding does not have.
 */
export function decodeTokens(counter: TokenCounter, tokens: number[]): { text: string; complete: boolean } {
  resetDecoder(counter);
  let text: string;
  try {
    text = counter.decode(tokens);
  } catch (error) {
    resetDecoder(counter);
    throw error;
  }
  return { text, complete: resetDecoder(counter) };
}

/** The longest prefix of `tokens` that ends on a character boundary. */
export function completePrefix(counter: TokenCounter, tokens: number[]): { text: string; tokens: number[] } {
  let kept = tokens;
  for (;;) {
    const decoded = decodeTokens(counter, kept);
    if (decoded.complete || kept.length === 0) return { text: decoded.text, tokens: kept };
    kept = kept.slice(0, -1);
  }
}

/**
 * The tokens as pieces of text, one per token except where a character spans several
 * tokens (those are merged into one piece). Tokens after the last complete character are
 * left out. For the tokens of a whole text, the pieces concatenate to that text.
 */
export function tokenPieces(counter: TokenCounter, tokens: number[]): TokenPiece[] {
  resetDecoder(counter);
  const pieces: TokenPiece[] = [];
  let pending: number[] = [];
  for (const token of tokens) {
    pending.push(token);
    const text = counter.decode(pending);
    if (resetDecoder(counter)) {
      pieces.push({ text, tokens: pending.length });
      pending = [];
    }
  }
  return pieces;
}
