import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalDiskBlobStore } from '../files/blob-store.js';
import { checkBatchInput, itemKeyOf, requestBody, type ValidLine } from './batch-input.js';

const directory = mkdtempSync(join(tmpdir(), 'chatgate-batch-input-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

const line = (customId: string, content: string, model = 'gpt-4o-mini') =>
  JSON.stringify({ custom_id: customId, method: 'POST', url: '/v1/chat/completions', body: { model, messages: [{ role: 'user', content }] } });

/** The bytes in pieces of `size`, so lines and characters are cut across chunks. */
function pieces(bytes: Buffer, size: number): Readable {
  const chunks: Buffer[] = [];
  for (let start = 0; start < bytes.length; start += size) chunks.push(bytes.subarray(start, start + size));
  return Readable.from(chunks);
}

const options = { endpoint: '/v1/chat/completions', modelExists: (name: string) => name === 'gpt-4o-mini', maxRequests: 100 };

describe('checkBatchInput', () => {
  it('finds every line and its bytes (CRLF, a BOM, multi-byte text cut across chunks), and reads bodies back', async () => {
    const text = '\uFEFF' + [line('a', 'héllo ✓'), '', line('b', '日本語のテキスト'), 'oops', line('a', 'again'), line('c', 'x', 'nope')].join('\r\n') + '\n' + line('d', 'last, no newline');
    const bytes = Buffer.from(text, 'utf8');
    const blobs = new LocalDiskBlobStore(directory);
    await blobs.put('file-input', Readable.from([bytes]));
    for (const size of [1, 7, 64, bytes.length]) {
      const check = await checkBatchInput(pieces(bytes, size), options);
      expect(check.fileError).toBeNull();
      expect(check.lines.map((entry) => [entry.line, entry.kind, itemKeyOf(entry)])).toEqual([
        [1, 'request', 'c:a'],
        [3, 'request', 'c:b'],
        [4, 'invalid', 'l:4'],
        [5, 'invalid', 'l:5'],
        [6, 'invalid', 'l:6'],
        [7, 'request', 'c:d'],
      ]);
      expect(check.lines.filter((entry) => entry.kind === 'invalid').map((entry) => entry.kind === 'invalid' && entry.error.code)).toEqual([
        'invalid_json_line',
        'duplicate_custom_id',
        'model_not_found',
      ]);
      const reader = (await blobs.reader('file-input'))!;
      const bodies = await Promise.all(check.lines.filter((entry): entry is ValidLine => entry.kind === 'request').map((entry) => requestBody(reader, entry)));
      await reader.close();
      expect(bodies.map((body) => (JSON.parse(body!) as { messages: Array<{ content: string }> }).messages[0]!.content)).toEqual(['héllo ✓', '日本語のテキスト', 'last, no newline']);
    }
    const reader = (await blobs.reader('file-input'))!;
    expect(await requestBody(reader, { kind: 'request', line: 1, customId: 'a', model: 'm', offset: bytes.length - 3, length: 10 })).toBeNull();
    await reader.close();
  });

  it('fails an empty file and one with too many requests', async () => {
    expect((await checkBatchInput(Readable.from([Buffer.from('\n \n')]), options)).fileError?.code).toBe('empty_file');
    const many = Array.from({ length: 5 }, (_, index) => line(`r${index}`, 'x')).join('\n');
    const check = await checkBatchInput(Readable.from([Buffer.from(many)]), { ...options, maxRequests: 3 });
    expect(check.fileError).toMatchObject({ code: 'too_many_requests', line: 4 });
  });
});
