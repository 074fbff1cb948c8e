/**
 * How the mock streams text: word by word, each part a word with the whitespace after it
 * (whitespace before the first word goes with it). When the texts of the answer's token
 * pieces are given (for logprobs), each part carries the pieces that end within it, so
 * that the parts together carry every piece once, in order.
 */
export interface WordPart {
  text: string;
  /** The part's token pieces: indexes `pieceStart` to `pieceEnd` (exclusive). */
  pieceStart: number;
  pieceEnd: number;
}

export function splitWords(text: string): string[] {
  if (text === '') return [];
  return text.match(/\s*\S+\s*/gu) ?? [text];
}

export function wordParts(text: string, pieceTexts: string[] = []): WordPart[] {
  const parts: WordPart[] = [];
  let wordEnd = 0;
  let pieceIndex = 0;
  let pieceEnd = 0;
  for (const word of splitWords(text)) {
    wordEnd += word.length;
    const start = pieceIndex;
    for (let piece = pieceTexts[pieceIndex]; piece !== undefined && pieceEnd + piece.length <= wordEnd; piece = pieceTexts[pieceIndex]) {
      pieceEnd += piece.length;
      pieceIndex++;
    }
    parts.push({ text: word, pieceStart: start, pieceEnd: pieceIndex });
  }
  // Pieces that do not line up with the text (undecodable token ids) go with the last part.
  const last = parts.at(-1);
  if (last) last.pieceEnd = pieceTexts.length;
  return parts;
}
