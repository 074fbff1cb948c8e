import { describe, expect, it } from 'vitest';
import { splitWords, wordParts } from './word-parts.js';

describe('splitWords', () => {
  it.each([
    ['hello world', ['hello ', 'world']],
    ['  leading and trailing  ', ['  leading ', 'and ', 'trailing  ']],
    ['tabs\tand\nnewlines\n\n', ['tabs\t', 'and\n', 'newlines\n\n']],
    ['   ', ['   ']],
    ['', []],
    ['one', ['one']],
  ])('%j', (text, words) => {
    expect(splitWords(text)).toEqual(words);
    expect(splitWords(text).join('')).toBe(text);
  });
});

describe('wordParts', () => {
  it('gives each word the pieces that end within it', () => {
    expect(wordParts('hello world again', ['hello', ' world', ' again'])).toEqual([
      { text: 'hello ', pieceStart: 0, pieceEnd: 1 },
      { text: 'world ', pieceStart: 1, pieceEnd: 2 },
      { text: 'again', pieceStart: 2, pieceEnd: 3 },
    ]);
  });

  it('puts pieces that do not line up with the text in the last part', () => {
    expect(wordParts('a b', ['a', ' b', 'extra']).at(-1)).toEqual({ text: 'b', pieceStart: 1, pieceEnd: 3 });
  });
});
