import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGgufFileInfo } from 'node-llama-cpp';
import { afterAll, describe, expect, it } from 'vitest';
import { CHATML_TEMPLATE, TINY_TOKEN_IDS, buildTinyGguf, writeTinyGguf } from './tiny-gguf.js';

const directory = mkdtempSync(join(tmpdir(), 'chatgate-tiny-gguf-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

describe('writeTinyGguf', () => {
  it('writes a GGUF file that node-llama-cpp reads with the right metadata', async () => {
    const path = join(directory, 'tiny.gguf');
    const written = await writeTinyGguf(path, { seed: 42, contextLength: 128 });
    expect(written.bytes).toBeGreaterThan(100_000);
    const info = await readGgufFileInfo(path);
    expect(info.version).toBe(3);
    expect(info.metadata.general.architecture).toBe('llama');
    expect(info.metadata.general.name).toBe('chatgate-tiny-test');
    expect(info.architectureMetadata.context_length).toBe(128);
    expect(info.architectureMetadata.embedding_length).toBe(64);
    expect(info.architectureMetadata.block_count).toBe(2);
    expect(info.metadata.tokenizer.chat_template).toBe(CHATML_TEMPLATE);
    expect(info.metadata.tokenizer.ggml.tokens).toHaveLength(398);
    expect(info.metadata.tokenizer.ggml.eos_token_id).toBe(TINY_TOKEN_IDS.eos);
    expect(info.totalTensorCount).toBe(3 + 2 * 9);
  });

  it('is deterministic per seed, and f16 makes it smaller', () => {
    expect(buildTinyGguf({ seed: 1 }).equals(buildTinyGguf({ seed: 1 }))).toBe(true);
    expect(buildTinyGguf({ seed: 1 }).equals(buildTinyGguf({ seed: 2 }))).toBe(false);
    expect(buildTinyGguf({ tensorType: 'f16' }).length).toBeLessThan(buildTinyGguf().length);
  });
});
