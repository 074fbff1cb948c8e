import { describe, expect, it } from 'vitest';
import { TokenCounters } from '../../tokens/token-counter.js';
import { limitText, limitTextAsync } from './text-limits.js';

const counters = new TokenCounters();
const prose = 'The quick brown fox jumps over the lazy dog; café, naïve, 東京, emoji 🙂. '.repeat(20_000);
const run = 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(20_000);

describe('limitTextAsync (the echo of a large prompt)', () => {
  it('gives what limitText gives, with or without a token limit or stop sequence', async () => {
    const counter = await counters.get('o200k_base');
    for (const text of [prose, run]) {
      for (const limits of [
        { stop: [], maxTokens: 16 },
        { stop: [], maxTokens: 100_000 },
        { stop: ['lazy dog; café, naïve, 東京, emoji 🙂. The quick brown fox jumps over the lazy dog; café'], maxTokens: undefined },
        { stop: [], maxTokens: undefined },
      ]) {
        expect(await limitTextAsync(counter, text, limits)).toEqual(limitText(counter, text, limits));
      }
    }
  });

  it('encodes only as far as the limit needs', async () => {
    const counter = await counters.get('o200k_base');
    const tokens = await counter.encodeAsync(prose, { limit: 16 });
    expect(tokens.length).toBeGreaterThan(16);
    expect(tokens.length).toBeLessThan(20_000);
    expect(tokens).toEqual(counter.encode(prose).slice(0, tokens.length));
  });
});
