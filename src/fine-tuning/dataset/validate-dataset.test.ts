import { describe, expect, it } from 'vitest';
import type { TrainingExample } from './example-types.js';
import { estimateTrainedTokens, validateDataset, type ValidateDatasetOptions } from './validate-dataset.js';

const valid = (n = 0) => ({ messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: `question ${n}` }, { role: 'assistant', content: `answer ${n}` }] });
const line = (value: unknown) => JSON.stringify(value);
/** Ten valid lines with `bad` as line `at` (1-based) instead. */
function fileWith(bad: string, at = 4, total = 11): string {
  return Array.from({ length: total }, (_, index) => (index + 1 === at ? bad : line(valid(index)))).join('\n') + '\n';
}
const countByMessages = (example: TrainingExample) => example.messages.length * 10;
const options: ValidateDatasetOptions = { contextWindow: 1000, countTokens: countByMessages };

async function errorsOf(bad: unknown, extra: Partial<ValidateDatasetOptions> = {}) {
  const result = await validateDataset(fileWith(typeof bad === 'string' ? bad : line(bad)), { ...options, ...extra });
  expect(result.ok).toBe(false);
  return result.errors;
}

const toolsExample = (messages: unknown[], extra: Record<string, unknown> = {}) => ({
  tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }],
  messages,
  ...extra,
});
const call = (id: string, args = '{"city":"Paris"}', name = 'get_weather') => ({ id, type: 'function', function: { name, arguments: args } });

describe('validateDataset: malformed lines', () => {
  it('invalid JSON', async () => {
    expect(await errorsOf('{"messages": [')).toEqual([expect.objectContaining({ line: 4, code: 'invalid_json' })]);
  });

  it('a JSON value that is not an object', async () => {
    expect(await errorsOf('[1, 2]')).toEqual([expect.objectContaining({ line: 4, code: 'not_an_object' })]);
  });

  it('missing messages', async () => {
    expect(await errorsOf({ prompt: 'hi', completion: 'there' })).toEqual([expect.objectContaining({ line: 4, code: 'missing_messages' })]);
    expect(await errorsOf({ messages: [] })).toEqual([expect.objectContaining({ line: 4, code: 'missing_messages' })]);
  });

  it('a bad role (and developer, which fine-tuning files do not take)', async () => {
    expect(await errorsOf({ messages: [{ role: 'bot', content: 'x' }, { role: 'assistant', content: 'y' }] })).toEqual([
      expect.objectContaining({ line: 4, code: 'invalid_role' }),
    ]);
    const [developer] = await errorsOf({ messages: [{ role: 'developer', content: 'x' }, { role: 'assistant', content: 'y' }] });
    expect(developer).toMatchObject({ line: 4, code: 'invalid_role' });
    expect(developer!.message).toContain("'system'");
  });

  it('an unknown key in a message', async () => {
    const errors = await errorsOf({ messages: [{ role: 'user', content: 'x', mood: 'happy' }, { role: 'assistant', content: 'y' }] });
    expect(errors).toEqual([expect.objectContaining({ line: 4, code: 'unrecognized_key' })]);
    expect(errors[0]!.message).toContain("'mood'");
  });

  it('no assistant message', async () => {
    expect(await errorsOf({ messages: [{ role: 'system', content: 'x' }, { role: 'user', content: 'y' }] })).toEqual([
      expect.objectContaining({ line: 4, code: 'missing_assistant_message' }),
    ]);
  });

  it('every assistant message with weight 0', async () => {
    expect(await errorsOf({ messages: [{ role: 'user', content: 'y' }, { role: 'assistant', content: 'z', weight: 0 }] })).toEqual([
      expect.objectContaining({ line: 4, code: 'no_trained_messages' }),
    ]);
  });

  it('tool call arguments that are not JSON', async () => {
    const errors = await errorsOf(toolsExample([{ role: 'user', content: 'weather?' }, { role: 'assistant', tool_calls: [call('c1', '{city: Paris')] }]));
    expect(errors).toEqual([expect.objectContaining({ line: 4, code: 'invalid_tool_call' })]);
    expect(errors[0]!.message).toContain('messages[1].tool_calls[0].function.arguments');
  });

  it('a call to a function that is not in tools', async () => {
    expect(await errorsOf(toolsExample([{ role: 'user', content: 'q' }, { role: 'assistant', tool_calls: [call('c1', '{}', 'get_time')] }]))).toEqual([
      expect.objectContaining({ line: 4, code: 'invalid_tool_call' }),
    ]);
  });

  it('a tool message without a matching call', async () => {
    const errors = await errorsOf(
      toolsExample([
        { role: 'user', content: 'weather?' },
        { role: 'assistant', tool_calls: [call('c1')] },
        { role: 'tool', tool_call_id: 'c2', content: '20' },
        { role: 'assistant', content: 'It is 20.' },
      ]),
    );
    expect(errors).toContainEqual(expect.objectContaining({ line: 4, code: 'invalid_tool_message' }));
    expect(errors.every((error) => error.line === 4)).toBe(true);
  });

  it('a call that is never answered before the conversation goes on', async () => {
    expect(await errorsOf(toolsExample([{ role: 'user', content: 'q' }, { role: 'assistant', tool_calls: [call('c1')] }, { role: 'user', content: 'and?' }, { role: 'assistant', content: 'a' }]))).toEqual([
      expect.objectContaining({ line: 4, code: 'invalid_tool_call' }),
    ]);
  });

  it('two calls in one message with parallel_tool_calls false', async () => {
    const example = toolsExample([{ role: 'user', content: 'q' }, { role: 'assistant', tool_calls: [call('c1'), call('c2')] }], { parallel_tool_calls: false });
    expect(await errorsOf(example)).toEqual([expect.objectContaining({ line: 4, code: 'invalid_tool_call' })]);
  });

  it('malformed tools', async () => {
    expect(await errorsOf({ tools: [{ type: 'function', function: { name: 'bad name!' } }], messages: valid().messages })).toEqual([
      expect.objectContaining({ line: 4, code: 'invalid_tools' }),
    ]);
  });

  it('weight other than 0 or 1, and weight on a user message', async () => {
    expect(await errorsOf({ messages: [{ role: 'user', content: 'y' }, { role: 'assistant', content: 'z', weight: 0.5 }] })).toEqual([
      expect.objectContaining({ line: 4, code: 'invalid_weight' }),
    ]);
    expect(await errorsOf({ messages: [{ role: 'user', content: 'y', weight: 1 }, { role: 'assistant', content: 'z' }] })).toEqual([
      expect.objectContaining({ line: 4, code: 'invalid_weight' }),
    ]);
  });

  it('content of the wrong type, and an assistant message with nothing in it', async () => {
    expect(await errorsOf({ messages: [{ role: 'user', content: 42 }, { role: 'assistant', content: 'z' }] })).toEqual([
      expect.objectContaining({ line: 4, code: 'invalid_content' }),
    ]);
    expect(await errorsOf({ messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: null }] })).toEqual([
      expect.objectContaining({ line: 4, code: 'invalid_content' }),
    ]);
  });

  it('an example over the context window, naming both numbers', async () => {
    const long = { messages: [...valid().messages, { role: 'user', content: 'more' }, { role: 'assistant', content: 'more' }] };
    const errors = await errorsOf(long, { contextWindow: 40 });
    expect(errors).toEqual([expect.objectContaining({ line: 4, code: 'too_many_tokens' })]);
    expect(errors[0]!.message).toContain('50');
    expect(errors[0]!.message).toContain('40');
  });

  it('a token count that fails', async () => {
    const errors = await errorsOf('{"messages":[{"role":"user","content":"boom"},{"role":"assistant","content":"x"}]}', {
      countTokens: (example) => {
        if (example.messages[0]!.content === 'boom') throw new Error('images are not supported');
        return 10;
      },
    });
    expect(errors).toEqual([expect.objectContaining({ line: 4, code: 'token_count_failed' })]);
  });

  it('a blank line between examples', async () => {
    const errors = await errorsOf('');
    expect(errors).toEqual([expect.objectContaining({ line: 4, code: 'blank_line' })]);
  });

  it('a line that is not UTF-8', async () => {
    const bytes = Buffer.concat([Buffer.from(fileWith('X', 2).replace('X\n', '')), Buffer.from([0xff, 0xfe, 0x0a])]);
    const result = await validateDataset(bytes, options);
    expect(result.errors).toEqual([expect.objectContaining({ line: 11, code: 'invalid_utf8' })]);
  });
});

describe('validateDataset: the file', () => {
  it('too few examples is a file-level error', async () => {
    const result = await validateDataset([valid(1), valid(2), valid(3)].map(line).join('\n'), options);
    expect(result).toMatchObject({ ok: false, examples: 3, errors: [{ line: null, code: 'too_few_examples' }] });
    expect(result.errors[0]!.message).toContain('10');
    expect((await validateDataset([valid(1)].map(line).join('\n'), { ...options, minExamples: 1 })).ok).toBe(true);
  });

  it('a valid file passes with the right counts (trailing blank lines and CRLF are fine)', async () => {
    const lines = Array.from({ length: 12 }, (_, index) => line(valid(index)));
    lines.push(
      line(
        toolsExample([
          { role: 'user', content: 'weather?' },
          { role: 'assistant', content: null, tool_calls: [call('c1'), call('c2', '{"city":"Rome"}')] },
          { role: 'tool', tool_call_id: 'c1', content: '20' },
          { role: 'tool', tool_call_id: 'c2', content: [{ type: 'text', text: '25' }] },
          { role: 'assistant', content: 'Paris 20, Rome 25.', weight: 1 },
          { role: 'user', content: [{ type: 'text', text: 'and?' }, { type: 'image_url', image_url: { url: 'https://example.com/a.png', detail: 'low' } }] },
          { role: 'assistant', content: 'nice', weight: 0, name: 'bot' },
        ]),
      ),
      line({
        functions: [{ name: 'lookup', parameters: { type: 'object' } }],
        messages: [
          { role: 'user', content: 'find x' },
          { role: 'assistant', function_call: { name: 'lookup', arguments: '{"q":"x"}' } },
          { role: 'function', name: 'lookup', content: 'found' },
          { role: 'assistant', content: 'x is found' },
        ],
      }),
    );
    const text = lines.join('\r\n') + '\r\n\r\n\n';
    const result = await validateDataset(text, { ...options, countTokens: (example) => ({ tokens: example.messages.length * 10, trainedTokens: 5 }) });
    expect(result).toEqual({ ok: true, examples: 14, lines: 14, errors: [], truncated: false, tokens: { total: 12 * 30 + 70 + 40, max: 70, trained: 14 * 5 } });
    expect(estimateTrainedTokens(result, 3)).toBe(3 * (12 * 30 + 110));
  });

  it('takes bytes, a stream of chunks split anywhere, or a list of lines', async () => {
    const text = Array.from({ length: 10 }, (_, index) => line(valid(index))).join('\n');
    const bytes = Buffer.from(text.replace('answer 3', 'answer é€'));
    async function* chunks() {
      for (let at = 0; at < bytes.length; at += 7) yield bytes.subarray(at, at + 7);
    }
    for (const source of [bytes, chunks(), { lines: text.split('\n') }]) {
      const result = await validateDataset(source, options);
      expect(result).toMatchObject({ ok: true, examples: 10, lines: 10 });
    }
  });

  it('stops at maxErrors', async () => {
    const text = Array.from({ length: 50 }, () => 'nope').join('\n');
    const result = await validateDataset(text, { ...options, maxErrors: 5 });
    expect(result).toMatchObject({ ok: false, truncated: true });
    expect(result.errors.map((error) => error.line)).toEqual([1, 2, 3, 4, 5]);
  });

  it('streams a large file with bounded memory', async () => {
    const total = 50_000;
    const padding = 'x'.repeat(900);
    let produced = 0;
    let maxAhead = 0;
    const lineBytes = Buffer.byteLength(line({ messages: [{ role: 'user', content: `q 00000 ${padding}` }, { role: 'assistant', content: 'a' }] }) + '\n');
    async function* file() {
      let pending = '';
      for (let index = 0; index < total; index++) {
        pending += line({ messages: [{ role: 'user', content: `q ${String(index).padStart(5, '0')} ${padding}` }, { role: 'assistant', content: 'a' }] }) + '\n';
        if (pending.length >= 65_536) {
          produced += pending.length;
          yield Buffer.from(pending);
          pending = '';
        }
      }
      produced += pending.length;
      yield Buffer.from(pending);
    }
    let counted = 0;
    const heapBefore = process.memoryUsage().heapUsed;
    const result = await validateDataset(file(), {
      contextWindow: 100,
      countTokens: () => {
        counted++;
        maxAhead = Math.max(maxAhead, produced - counted * lineBytes);
        return 10;
      },
    });
    const heapGrowth = process.memoryUsage().heapUsed - heapBefore;
    expect(result).toMatchObject({ ok: true, examples: total, lines: total, tokens: { total: total * 10, max: 10 } });
    // The file (~47 MB) was read a chunk at a time: never more than one chunk ahead of the validator.
    expect(total * lineBytes).toBeGreaterThan(45_000_000);
    expect(maxAhead).toBeLessThan(65_536 + 2 * lineBytes);
    expect(heapGrowth).toBeLessThan(40_000_000);
  });
});
