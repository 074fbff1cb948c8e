import { describe, expect, it } from 'vitest';
import { readLines, type DatasetSource } from './jsonl-lines.js';

async function collect(source: DatasetSource) {
  const out = [];
  for await (const line of readLines(source)) out.push(line);
  return out;
}

describe('readLines', () => {
  it('numbers lines, drops a BOM and CR, keeps a last line without a newline', async () => {
    expect(await collect('\uFEFFa\r\nb\n\nc')).toEqual([
      { number: 1, text: 'a' },
      { number: 2, text: 'b' },
      { number: 3, text: '' },
      { number: 4, text: 'c' },
    ]);
    expect(await collect('a\n')).toEqual([{ number: 1, text: 'a' }]);
  });

  it('splits chunks anywhere, even inside a character', async () => {
    const bytes = Buffer.from('é€\nx');
    async function* chunks() {
      for (const byte of bytes) yield Buffer.from([byte]);
    }
    expect(await collect(chunks())).toEqual([{ number: 1, text: 'é€' }, { number: 2, text: 'x' }]);
  });

  it('reports a line that is not UTF-8 as null', async () => {
    expect(await collect(Buffer.from([0x61, 0x0a, 0xc3, 0x28, 0x0a]))).toEqual([{ number: 1, text: 'a' }, { number: 2, text: null }]);
  });
});
