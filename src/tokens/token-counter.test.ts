import { describe, expect, it } from 'vitest';
import { TokenCounters, tokenUpperBound } from './token-counter.js';

describe('TokenCounters', () => {
  const counters = new TokenCounters();

  it('counts text with the named encoding, treating special tokens as text', async () => {
    const counter = await counters.get('cl100k_base');
    expect(counter.count('hello world')).toBe(2);
    expect(counter.count('a <|endoftext|> b')).toBeGreaterThan(3);
    expect(counter.decode(counter.encode('round trip ✓'))).toBe('round trip ✓');
  });

  it('counts a chat prompt with per-message framing', async () => {
    const counter = await counters.get('o200k_base');
    const one = counter.countChat([{ role: 'user', content: 'hi' }]);
    const two = counter.countChat([
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'hi' },
    ]);
    expect(one).toBeGreaterThan(counter.count('hi'));
    expect(two - one).toBeGreaterThanOrEqual(3 + counter.count('be brief'));
  });

  it('shares one loaded encoding', async () => {
    expect(await counters.get('cl100k_base')).toBe(await counters.get('cl100k_base'));
  });

  it('bounds tokens by bytes', async () => {
    const counter = await counters.get('cl100k_base');
    for (const text of ['', 'abc', 'héllo wörld', '日本語のテキスト', '🙂🙂🙂']) {
      expect(counter.count(text)).toBeLessThanOrEqual(tokenUpperBound(text));
    }
  });
});
