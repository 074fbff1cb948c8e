import { describe, expect, it } from 'vitest';
import { TokenCounters, type EncodingName } from '../../tokens/token-counter.js';
import { completePrefix, decodeTokens, tokenPieces } from './token-decoding.js';

const counters = new TokenCounters();
const encodings: EncodingName[] = ['cl100k_base', 'o200k_base'];
const texts = ['plain ascii text', '日本語のテキスト', 'emoji 🙂👍🏽 and 𝔘 math', 'ünïcödé ß', ''];

describe.each(encodings)('token decoding with %s', (encoding) => {
  it('splits tokens into pieces that concatenate to the text', async () => {
    const counter = await counters.get(encoding);
    for (const text of texts) {
      const tokens = counter.encode(text);
      const pieces = tokenPieces(counter, tokens);
      expect(pieces.map((piece) => piece.text).join('')).toBe(text);
      expect(pieces.reduce((total, piece) => total + piece.tokens, 0)).toBe(tokens.length);
    }
  });

  it('reports whether tokens end on a character boundary, and leaves the decoder clean', async () => {
    const counter = await counters.get(encoding);
    const text = '🙂👍🏽日本語';
    const tokens = counter.encode(text);
    let incompleteSeen = 0;
    for (let end = 0; end <= tokens.length; end++) {
      const decoded = decodeTokens(counter, tokens.slice(0, end));
      expect(text.startsWith(decoded.text)).toBe(true);
      if (!decoded.complete) incompleteSeen++;
      const prefix = completePrefix(counter, tokens.slice(0, end));
      expect(decodeTokens(counter, prefix.tokens)).toEqual({ text: prefix.text, complete: true });
      // the next, unrelated decode is not polluted by left-over bytes
      expect(counter.decode(counter.encode('語🙂'))).toBe('語🙂');
    }
    expect(incompleteSeen).toBeGreaterThan(0);
    expect(decodeTokens(counter, tokens).complete).toBe(true);
  });

  it('throws for unknown token ids and still leaves the decoder clean', async () => {
    const counter = await counters.get(encoding);
    const partial = counter.encode('🙂').slice(0, 1);
    expect(() => decodeTokens(counter, [...partial, 999_999_999])).toThrow();
    expect(counter.decode(counter.encode('語🙂'))).toBe('語🙂');
  });
});
