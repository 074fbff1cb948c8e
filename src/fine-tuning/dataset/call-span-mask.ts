/**
 * Which tokens of a rendered group of function calls the model generates. node-llama-cpp
 * renders a model response's consecutive calls together with their results, either
 * call₁ result₁ call₂ result₂ …, or (wrappers with parallel calling) a call section
 * followed by a result section. The model writes the calls (and the section syntax around
 * them); the results are inserted by the library and must not be trained on. Given the
 * tokens of the rendered group and, per call, the tokens of its call and of its result as
 * the chat wrapper renders them alone (a few tokenization variants each), this marks:
 * everything from the start up to the end of the first call, and from the end of each
 * result (or, in a call section, the end of the previous call) up to the end of the next
 * call, plus the call section's closing syntax; the rest is 0. Returns undefined when a
 * call cannot be found in the span (the caller then trains on none of it).
 */

export interface CallPieces {
  /** Tokenizations of the call alone (e.g. with and without a leading space). */
  call: number[][];
  /** Tokenizations of its result alone. */
  result: number[][];
}

interface Found {
  index: number;
  end: number;
}

function startsAt(span: readonly number[], needle: readonly number[], at: number): boolean {
  if (at + needle.length > span.length) return false;
  for (let i = 0; i < needle.length; i++) if (span[at + i] !== needle[i]) return false;
  return true;
}

/** The earliest occurrence of any of the variants at or after `from`. */
export function findFirst(span: readonly number[], variants: readonly number[][], from: number): Found | undefined {
  let best: Found | undefined;
  for (const needle of variants) {
    if (needle.length === 0) continue;
    for (let at = from; at + needle.length <= span.length && (best === undefined || at <= best.index); at++) {
      if (startsAt(span, needle, at)) {
        if (best === undefined || at < best.index || (at === best.index && at + needle.length > best.end)) best = { index: at, end: at + needle.length };
        break;
      }
    }
  }
  return best;
}

export function callSpanMask(span: readonly number[], calls: readonly CallPieces[], sectionSuffix: readonly number[][] = []): number[] | undefined {
  const mask = new Array<number>(span.length).fill(0);
  let previousEnd = 0;
  let previous: CallPieces | undefined;
  for (const pieces of calls) {
    const call = findFirst(span, pieces.call, previousEnd);
    if (!call) return undefined;
    let from = previousEnd;
    if (previous) {
      const result = findFirst(span, previous.result, previousEnd);
      if (result && result.end <= call.index) from = result.end;
    }
    mask.fill(1, from, call.end);
    previousEnd = call.end;
    previous = pieces;
  }
  const closing = sectionSuffix.find((needle) => needle.length > 0 && startsAt(span, needle, previousEnd));
  if (closing) mask.fill(1, previousEnd, previousEnd + closing.length);
  return mask;
}
