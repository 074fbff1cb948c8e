import { describe, expect, it } from 'vitest';
import { TokenCounters } from '../../tokens/token-counter.js';
import { gptTokenCounter } from './gpt-token-count.js';

describe('gptTokenCounter', () => {
  it('counts the example and its trained assistant tokens', async () => {
    const count = await gptTokenCounter(new TokenCounters(), 'cl100k_base');
    const base = { messages: [{ role: 'user' as const, content: 'What is the capital of France?' }, { role: 'assistant' as const, content: 'Paris is the capital of France.' }] };
    const plain = count(base);
    expect(plain.tokens).toBeGreaterThan(15);
    expect(plain.trainedTokens).toBe(1 + 7);
    const unweighted = count({ messages: [...base.messages, { role: 'user', content: 'Sure?' }, { role: 'assistant', content: 'Yes.', weight: 0 }] });
    expect(unweighted.trainedTokens).toBe(plain.trainedTokens);
    expect(unweighted.tokens).toBeGreaterThan(plain.tokens);
    const withTools = count({ ...base, tools: [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object' } } }] });
    expect(withTools.tokens).toBeGreaterThan(plain.tokens);
  });
});
