/**
 * The matches of a global regular expression in a text, as `text.matchAll` gives them, but
 * searched window by window so that no single search runs over the whole of a large text:
 * a regex with no match in a 2 MB text would otherwise scan all of it in one step.
 *
 * Each window (WINDOW characters) is searched in a slice that adds `behind` characters of
 * context before it (for lookbehinds and `\b`) and `ahead` characters after it (for the
 * rest of a match that starts in the window, and its lookahead). With `behind` at least the
 * lookbehind's reach and `ahead` more than a match and its lookahead can span, the matches
 * are those of `text.matchAll`. A match that reaches (nearly) the end of its slice may have
 * been cut short there, or its lookahead may have seen the slice's end: it is searched again in the whole text, so even an unbounded run (a 1 MB
 * run of digits) gives the same match. Yields `null` after each window, so a caller can
 * pace the scan. Short texts are searched as they are.
 */
export interface Reach {
  /** Characters of context a match's lookbehind may read before it. */
  behind: number;
  /** Characters a match and its lookahead may span after its start, in ordinary text. */
  ahead: number;
}

/** A match ending this close to its slice's end may have seen the end instead of its lookahead's text. */
const LOOKAHEAD_MARGIN = 8;

/** Characters searched per window. */
export const SCAN_WINDOW = 32_768;

export function* scanMatches(text: string, pattern: RegExp, reach: Reach): Generator<RegExpExecArray | null> {
  if (text.length <= SCAN_WINDOW + reach.ahead) {
    for (const match of text.matchAll(pattern)) yield match;
    return;
  }
  const regex = new RegExp(pattern.source, pattern.flags);
  let position = 0;
  while (position < text.length) {
    const from = Math.max(0, position - reach.behind);
    const windowEnd = Math.min(text.length, position + SCAN_WINDOW);
    const sliceEnd = Math.min(text.length, windowEnd + reach.ahead);
    const slice = text.slice(from, sliceEnd);
    regex.lastIndex = position - from;
    let next = windowEnd;
    for (;;) {
      let match = regex.exec(slice);
      if (match === null || from + match.index >= windowEnd) break;
      if (from + match.index + match[0].length >= sliceEnd - LOOKAHEAD_MARGIN && sliceEnd < text.length) {
        // Possibly cut short by the slice: search the whole text from there.
        regex.lastIndex = from + match.index;
        match = regex.exec(text);
        if (match === null) return;
      } else match.index += from;
      if (match[0].length === 0) throw new Error('scanMatches: the pattern matched an empty string');
      next = Math.max(windowEnd, match.index + match[0].length);
      yield match;
      if (match.index + match[0].length >= windowEnd) break;
      regex.lastIndex = match.index + match[0].length - from;
    }
    position = next;
    yield null;
  }
}
