import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY_TOKEN_IDS, writeTinyGguf } from '../../../test/support/tiny-gguf.js';
import { ChatTokenizer } from './chat-tokenizer.js';
import type { TrainingExample } from './example-types.js';
import { TokenizationError } from './training-history.js';
import { validateDataset } from './validate-dataset.js';

const directory = mkdtempSync(join(tmpdir(), 'chatgate-chat-tokenization-'));
let tokenizer: ChatTokenizer;

beforeAll(async () => {
  await writeTinyGguf(join(directory, 'tiny.gguf'), { seed: 7 });
  tokenizer = await ChatTokenizer.load({ modelPath: join(directory, 'tiny.gguf') });
});
afterAll(async () => {
  await tokenizer?.dispose();
  rmSync(directory, { recursive: true, force: true });
});

/** The text of each run of trained tokens, and of each untrained run. */
function runs(example: TrainingExample) {
  const { tokens, lossMask, exact } = tokenizer.tokenize(example);
  expect(tokens).toHaveLength(lossMask.length);
  const trained: string[] = [];
  const untrained: string[] = [];
  let start = 0;
  for (let i = 1; i <= tokens.length; i++) {
    if (i === tokens.length || lossMask[i] !== lossMask[start]) {
      (lossMask[start] === 1 ? trained : untrained).push(tokenizer.detokenize(tokens.slice(start, i)));
      start = i;
    }
  }
  return { tokens, lossMask, exact, trained, untrained, text: tokenizer.detokenize(tokens) };
}

const { imStart, imEnd, bos } = TINY_TOKEN_IDS;

describe('ChatTokenizer (ChatML tiny model)', () => {
  it('uses the model’s ChatML template', () => {
    expect(tokenizer.chatWrapper.wrapperName).toBe('ChatML');
  });

  it('marks exactly the assistant text and its <|im_end|>, not system or user messages', () => {
    const result = runs({ messages: [{ role: 'system', content: 'be nice' }, { role: 'user', content: 'hello' }, { role: 'assistant', content: 'hello world' }] });
    expect(result.exact).toBe(true);
    expect(result.trained).toEqual(['hello world<|im_end|>']);
    expect(result.tokens[0]).toBe(bos);
    expect(result.tokens.at(-1)).toBe(imEnd);
    expect(result.lossMask.at(-1)).toBe(1);
    result.tokens.forEach((token, index) => {
      if (token === imStart) expect(result.lossMask[index]).toBe(0);
    });
    // Two <|im_end|> of system and user untrained, the assistant's trained.
    expect(result.tokens.filter((token) => token === imEnd)).toHaveLength(3);
    expect(result.untrained.join('')).toContain('be nice');
    expect(result.untrained.join('')).toContain('hello<|im_end|>');
    expect(result.untrained.at(-1)!.endsWith('assistant\n')).toBe(true);
  });

  it('multi-turn: every assistant message; the sequence ends at the last trained token', () => {
    const result = runs({
      messages: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: 'yes' },
        { role: 'user', content: 'and?' },
        { role: 'assistant', content: 'no' },
        { role: 'user', content: 'ok' },
      ],
    });
    expect(result.exact).toBe(true);
    expect(result.trained).toEqual(['yes<|im_end|>', 'no<|im_end|>']);
    expect(result.untrained[1]).toContain('and?');
    expect(result.text).not.toContain('ok');
    expect(result.tokens.at(-1)).toBe(imEnd);
  });

  it('weight 0 keeps a message as context without training on it', () => {
    const result = runs({
      messages: [
        { role: 'system', content: 'sys' },
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: 'yes', weight: 0 },
        { role: 'user', content: 'and?' },
        { role: 'assistant', content: 'no', weight: 1 },
      ],
    });
    expect(result.trained).toEqual(['no<|im_end|>']);
    expect(result.untrained.join('')).toContain('yes<|im_end|>');
    const last = runs({ messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'yes' }, { role: 'user', content: 'and?' }, { role: 'assistant', content: 'no', weight: 0 }] });
    expect(last.trained).toEqual(['yes<|im_end|>']);
    expect(last.text).not.toContain('and?');
  });

  it('trains on tool calls but not on their results; text after the results continues the turn', () => {
    const calls = (city: string, id: string) => ({ id, type: 'function' as const, function: { name: 'get_weather', arguments: JSON.stringify({ city }) } });
    const result = runs({
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }],
      messages: [
        { role: 'user', content: 'weather?' },
        { role: 'assistant', content: 'checking', tool_calls: [calls('Paris', 'a'), calls('Rome', 'b')] },
        { role: 'tool', tool_call_id: 'a', content: '{"temp":20}' },
        { role: 'tool', tool_call_id: 'b', content: 'sunny' },
        { role: 'assistant', content: 'the answer is 20' },
      ],
    });
    expect(result.exact).toBe(true);
    expect(result.trained).toHaveLength(3);
    expect(result.trained[0]).toMatch(/^checking\|\|call: get_weather.*Paris.*\)$/);
    expect(result.trained[1]).toMatch(/\|\|call: get_weather.*Rome.*\)$/);
    expect(result.trained[2]).toBe('the answer is 20<|im_end|>');
    for (const text of result.trained) expect(text).not.toContain('result');
    expect(result.untrained.join('')).toContain('||result: {"temp": 20}');
    expect(result.untrained.join('')).toContain('get_weather'); // documented in the system prompt
    // One assistant turn: <|im_start|> for the user and the assistant only.
    expect(result.tokens.filter((token) => token === imStart)).toHaveLength(3); // system (functions), user, assistant
  });

  it('an example ending on a call ends right after the call', () => {
    const result = runs({ messages: [{ role: 'user', content: 'weather?' }, { role: 'assistant', tool_calls: [{ id: 'a', type: 'function', function: { name: 'get_weather', arguments: '{}' } }] }] });
    expect(result.trained).toHaveLength(1);
    expect(result.trained[0]).toMatch(/^\|\|call: get_weather.*\)$/);
    expect(result.text).not.toContain('result');
  });

  it('refuses images', () => {
    expect(() =>
      tokenizer.tokenize({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/a.png' } }] }, { role: 'assistant', content: 'a cat' }] }),
    ).toThrow(TokenizationError);
  });

  it('knows the context the model was trained with', () => {
    expect(tokenizer.trainContextSize).toBe(256);
  });

  it('counts tokens for the validator', async () => {
    const example = { messages: [{ role: 'user', content: 'hello' }, { role: 'assistant', content: 'hello world' }] } satisfies TrainingExample;
    const { tokens, lossMask } = tokenizer.tokenize(example);
    expect(tokenizer.countTokens(example)).toEqual({ tokens: tokens.length, trainedTokens: lossMask.filter((bit) => bit === 1).length });
    const file = Array.from({ length: 10 }, () => JSON.stringify(example)).join('\n');
    const ok = await validateDataset(file, { contextWindow: tokenizer.trainContextSize!, countTokens: tokenizer.countTokens });
    expect(ok).toMatchObject({ ok: true, examples: 10, tokens: { total: 10 * tokens.length, max: tokens.length, trained: 10 * lossMask.filter((bit) => bit === 1).length } });
    const tooLong = await validateDataset(file, { contextWindow: tokens.length - 1, countTokens: tokenizer.countTokens });
    expect(tooLong.errors[0]).toMatchObject({ line: 1, code: 'too_many_tokens' });
    const image = JSON.stringify({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/a.png' } }] }, { role: 'assistant', content: 'a cat' }] });
    const withImage = await validateDataset(`${file}\n${image}`, { contextWindow: 256, countTokens: tokenizer.countTokens });
    expect(withImage.errors).toEqual([expect.objectContaining({ line: 11, code: 'token_count_failed' })]);
  });
});
