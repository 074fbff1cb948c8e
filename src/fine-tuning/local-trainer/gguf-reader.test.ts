/**
 * GGUF reading: metadata of every kind the synthetic model has (strings, numbers, bools,
 * arrays), tensor infos and data (F32, F16), Q8_0 dequantization, and the adapter writer's
 * files read back.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildTinyGguf, buildTinyVocab } from '../../../test/support/tiny-gguf.js';
import { GGML_TYPE, halfToFloat } from '../../gguf/format.js';
import { decodeTensor, openGguf } from '../../gguf/reader.js';
import { writeLoraAdapter } from './lora-adapter-writer.js';

const directory = mkdtempSync(join(tmpdir(), 'chatgate-gguf-reader-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

describe('openGguf', () => {
  it.each(['f32', 'f16'] as const)('reads the metadata and tensors of a %s model', (tensorType) => {
    const path = join(directory, `model-${tensorType}.gguf`);
    writeFileSync(path, buildTinyGguf({ seed: 1, tensorType, embeddingLength: 32, feedForwardLength: 48 }));
    const file = openGguf(path);
    try {
      expect(file.version).toBe(3);
      expect(file.alignment).toBe(32);
      expect(file.metadata.get('general.architecture')).toBe('llama');
      expect(file.metadata.get('llama.embedding_length')).toBe(32);
      expect(file.metadata.get('llama.attention.layer_norm_rms_epsilon')).toBeCloseTo(1e-5, 10);
      expect(file.metadata.get('tokenizer.ggml.add_bos_token')).toBe(true);
      const vocab = buildTinyVocab();
      expect(file.metadata.get('tokenizer.ggml.tokens')).toEqual(vocab.tokens);
      expect(file.metadata.get('tokenizer.ggml.token_type')).toEqual(vocab.types);
      const embd = file.tensors.get('token_embd.weight')!;
      expect(embd.ne).toEqual([32, vocab.tokens.length]);
      expect(embd.type).toBe(tensorType === 'f16' ? GGML_TYPE.F16 : GGML_TYPE.F32);
      const values = file.readTensor('token_embd.weight');
      expect(values.length).toBe(32 * vocab.tokens.length);
      // Dimension 0 of every token embedding is the constant 1 (see test/support/tiny-gguf.ts).
      for (let token = 0; token < vocab.tokens.length; token++) expect(values[token * 32]).toBe(1);
      expect(Array.from(file.readTensor('output_norm.weight'))).toEqual(new Array(32).fill(1));
    } finally {
      file.close();
    }
  });

  it('reads back a LoRA adapter written by lora-adapter-writer', async () => {
    const path = join(directory, 'adapter.gguf');
    const a = Float32Array.from({ length: 2 * 5 }, (_, i) => i / 7);
    const b = Float32Array.from({ length: 3 * 2 }, (_, i) => -i / 3);
    await writeLoraAdapter(path, { rank: 2, alpha: 4, matrices: [{ layer: 1, target: 'ffn_up', inDim: 5, outDim: 3, a, b }] });
    const file = openGguf(path);
    try {
      expect(file.metadata.get('general.type')).toBe('adapter');
      expect(file.metadata.get('adapter.type')).toBe('lora');
      expect(file.metadata.get('adapter.lora.alpha')).toBe(4);
      expect(file.tensors.get('blk.1.ffn_up.weight.lora_a')!.ne).toEqual([5, 2]);
      expect(file.tensors.get('blk.1.ffn_up.weight.lora_b')!.ne).toEqual([2, 3]);
      expect(file.readTensor('blk.1.ffn_up.weight.lora_a')).toEqual(a);
      expect(file.readTensor('blk.1.ffn_up.weight.lora_b')).toEqual(b);
    } finally {
      file.close();
    }
  });
});

describe('decodeTensor', () => {
  it('dequantizes Q8_0 blocks (f16 scale · int8)', () => {
    const raw = Buffer.alloc(2 * 34);
    raw.writeUInt16LE(0x3800, 0); // 0.5
    raw.writeUInt16LE(0xc000, 34); // -2
    for (let j = 0; j < 32; j++) {
      raw.writeInt8(j - 16, 2 + j);
      raw.writeInt8(127 - j * 8, 36 + j);
    }
    const values = decodeTensor(raw, GGML_TYPE.Q8_0, 64);
    for (let j = 0; j < 32; j++) {
      expect(values[j]).toBe((j - 16) * 0.5);
      expect(values[32 + j]).toBe((127 - j * 8) * -2);
    }
  });

  it('converts halves, subnormals and specials', () => {
    expect(halfToFloat(0x3c00)).toBe(1);
    expect(halfToFloat(0xbc00)).toBe(-1);
    expect(halfToFloat(0x0001)).toBe(2 ** -24);
    expect(halfToFloat(0x7c00)).toBe(Infinity);
    expect(halfToFloat(0x7e00)).toBeNaN();
  });
});
