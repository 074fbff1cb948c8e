/**
 * Cuts a text into spans that BPE encodes in linear total time. BPE (gpt-tokenizer, like
 * tiktoken) is quadratic in the length of one pre-tokenizer piece: a 160k-character word
 * took 17 s. Counting span by span also gives callers a place to yield between spans.
 *
 * Exactness. The encodings' split patterns (cl100k_base, o200k_base) never put a
 * non-whitespace character and a following space (U+0020) in one piece, and have no
 * look-behind; so cutting the text before such a space, or at any piece boundary that
 * follows a non-whitespace character, leaves every piece, hence the count, unchanged.
 * Only a piece longer than MAX_PIECE_CHARS (no real word is) is cut inside: its chunks are
 * encoded alone, so merges across a cut are lost or, rarely, others happen instead. Such
 * cuts are `forced`; a counter adds one token per forced cut, which kept the count at or
 * above gpt-tokenizer's exact one in every case we measured (runs of one letter, random
 * letters, mixed case, punctuation, base64, CJK, emoji: off by at most one token per cut
 * either way), so the count stays a sound bound for limits. Ordinary text (words,
 * code, JSON, any piece up to 256 characters) is counted exactly.
 */

/** The longest piece BPE encodes in one go (its cost grows with the square of the length). */
export const MAX_PIECE_CHARS = 256;

/** About how many characters one span holds (a few milliseconds of BPE for ordinary text). */
export const SPAN_CHARS = 16_384;

/** A stretch without a safe cut is scanned by the split pattern this many characters at a time. */
const WINDOW_CHARS = 16_384;

/** A pending span is cut at a piece boundary, even an inexact one, once this long. */
const MAX_SPAN_CHARS = 4 * SPAN_CHARS;

export interface Span {
  start: number;
  end: number;
  /** The cut at `end` may change the count (inside a piece, or before whitespace-sensitive text). */
  forced: boolean;
}

/** JavaScript's `\s` (what the split patterns use). */
function isWhitespace(code: number): boolean {
  if (code < 128) return code === 32 || (code >= 9 && code <= 13);
  return (
    code === 0xa0 ||
    code === 0x1680 ||
    (code >= 0x2000 && code <= 0x200a) ||
    code === 0x2028 ||
    code === 0x2029 ||
    code === 0x202f ||
    code === 0x205f ||
    code === 0x3000 ||
    code === 0xfeff
  );
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

/** A piece boundary at `end` is a safe cut when the character before it is not whitespace. */
function safeEnd(text: string, end: number): boolean {
  return end >= text.length || !isWhitespace(text.charCodeAt(end - 1));
}

/** The first position at or after `from` holding a space that follows a non-whitespace character (else text.length). */
function nextSafeCut(text: string, from: number): number {
  let at = text.indexOf(' ', Math.max(from, 1));
  while (at !== -1 && isWhitespace(text.charCodeAt(at - 1))) at = text.indexOf(' ', at + 1);
  return at === -1 ? text.length : at;
}

/** Chunks of at most MAX_PIECE_CHARS of the piece [start, end), never splitting a surrogate pair. */
function* pieceChunks(text: string, start: number, end: number, lastCutForced: boolean): Generator<Span> {
  let at = start;
  while (at < end) {
    let chunkEnd = Math.min(at + MAX_PIECE_CHARS, end);
    if (chunkEnd < end && isLowSurrogate(text.charCodeAt(chunkEnd))) chunkEnd--;
    yield { start: at, end: chunkEnd, forced: chunkEnd < end || lastCutForced };
    at = chunkEnd;
  }
}

/**
 * Spans of [start, end), a stretch without a safe cut before a space (minified JSON, a long
 * word): pieces are found with the split pattern a window at a time, short pieces are kept
 * together, long ones are chunked.
 */
function* stretchSpans(text: string, start: number, end: number, split: RegExp): Generator<Span> {
  let pending = start;
  let position = start;
  while (position < end) {
    const windowEnd = Math.min(end, position + WINDOW_CHARS);
    const window = text.slice(position, windowEnd);
    let next = windowEnd;
    for (const match of window.matchAll(split)) {
      const pieceStart = position + match.index;
      const pieceEnd = pieceStart + match[0].length;
      const truncated = pieceEnd === windowEnd && windowEnd < end;
      if (truncated && pieceStart > position) {
        // The window may have cut this piece short: scan again from its start.
        next = pieceStart;
        break;
      }
      if (pieceEnd - pieceStart > MAX_PIECE_CHARS) {
        if (pieceStart > pending) yield { start: pending, end: pieceStart, forced: !safeEnd(text, pieceStart) };
        yield* pieceChunks(text, pieceStart, pieceEnd, truncated || !safeEnd(text, pieceEnd));
        pending = pieceEnd;
      } else if (pieceEnd - pending >= SPAN_CHARS && safeEnd(text, pieceEnd)) {
        yield { start: pending, end: pieceEnd, forced: false };
        pending = pieceEnd;
      } else if (pieceEnd - pending >= MAX_SPAN_CHARS) {
        yield { start: pending, end: pieceEnd, forced: true };
        pending = pieceEnd;
      }
    }
    position = next;
  }
  if (pending < end) yield { start: pending, end, forced: false };
}

/**
 * The spans of a text, in order, covering it: each at most about SPAN_CHARS long and
 * without any piece longer than MAX_PIECE_CHARS. `split` is the encoding's split pattern
 * (with the `g` flag).
 */
export function* boundedSpans(text: string, split: RegExp): Generator<Span> {
  let spanStart = 0;
  let cut = 0;
  while (cut < text.length) {
    const next = nextSafeCut(text, cut + 1);
    if (next - cut > MAX_PIECE_CHARS) {
      if (cut > spanStart) yield { start: spanStart, end: cut, forced: false };
      yield* stretchSpans(text, cut, next, split);
      spanStart = next;
    } else if (next - spanStart >= SPAN_CHARS) {
      yield { start: spanStart, end: next, forced: false };
      spanStart = next;
    }
    cut = next;
  }
  if (spanStart < text.length) yield { start: spanStart, end: text.length, forced: false };
}
