import { describe, expect, it } from 'vitest';
import { DatasetFormatError } from './dataset-error.js';
import { readExamples } from './read-examples.js';

const example = (n: number) => JSON.stringify({ messages: [{ role: 'user', content: `q${n}` }, { role: 'assistant', content: `a${n}` }] });

async function collect(source: Parameters<typeof readExamples>[0]) {
  const out = [];
  for await (const item of readExamples(source)) out.push(item);
  return out;
}

describe('readExamples', () => {
  it('yields parsed examples with their line numbers', async () => {
    const items = await collect(`${example(1)}\n${example(2)}\n\n`);
    expect(items.map((item) => item.line)).toEqual([1, 2]);
    expect(items[1]!.example.messages[1]).toEqual({ role: 'assistant', content: 'a2' });
  });

  it('throws on a line that is not a valid example', async () => {
    const error = await collect(`${example(1)}\n{"messages":[{"role":"user","content":"q"}]}\n`).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DatasetFormatError);
    expect(error).toMatchObject({ line: 2, code: 'missing_assistant_message' });
    await expect(collect(`${example(1)}\n\n${example(2)}`)).rejects.toMatchObject({ line: 2, code: 'blank_line' });
  });
});
