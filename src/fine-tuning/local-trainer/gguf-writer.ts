/**
 * Writes a GGUF v3 file: scalar metadata (string, uint32, float32) and float32 tensors, laid
 * out with `general.alignment` as llama.cpp's gguf loader expects (data section aligned, each
 * tensor's offset a multiple of the alignment).
 */
import { writeFile } from 'node:fs/promises';
import { GGML_TYPE, GGUF_VALUE_TYPE } from './gguf-reader.js';

export type GgufWriteValue =
  | { type: 'string'; value: string }
  | { type: 'uint32'; value: number }
  | { type: 'float32'; value: number };

export interface GgufWriteTensor {
  name: string;
  /** ne[0] (contiguous) first. */
  ne: number[];
  data: Float32Array;
}

/** The file's bytes. `general.alignment` (uint32) in `metadata` sets the alignment (default 32). */
export function encodeGguf(metadata: Array<[string, GgufWriteValue]>, tensors: GgufWriteTensor[]): Buffer {
  const alignmentEntry = metadata.find(([key]) => key === 'general.alignment');
  const alignment = alignmentEntry ? alignmentEntry[1].value as number : 32;
  const parts: Buffer[] = [];
  let length = 0;
  const push = (buffer: Buffer): void => {
    parts.push(buffer);
    length += buffer.length;
  };
  const u32 = (value: number): void => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(value);
    push(b);
  };
  const u64 = (value: number): void => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(value));
    push(b);
  };
  const str = (text: string): void => {
    const bytes = Buffer.from(text, 'utf8');
    u64(bytes.length);
    push(bytes);
  };
  const pad = (): void => {
    const rem = length % alignment;
    if (rem !== 0) push(Buffer.alloc(alignment - rem));
  };

  push(Buffer.from('GGUF', 'ascii'));
  u32(3);
  u64(tensors.length);
  u64(metadata.length);
  for (const [key, entry] of metadata) {
    str(key);
    if (entry.type === 'string') {
      u32(GGUF_VALUE_TYPE.STRING);
      str(entry.value);
    } else if (entry.type === 'uint32') {
      u32(GGUF_VALUE_TYPE.UINT32);
      u32(entry.value);
    } else {
      u32(GGUF_VALUE_TYPE.FLOAT32);
      const b = Buffer.alloc(4);
      b.writeFloatLE(entry.value);
      push(b);
    }
  }
  let offset = 0;
  for (const tensor of tensors) {
    const count = tensor.ne.reduce((a, b) => a * b, 1);
    if (count !== tensor.data.length) throw new Error(`tensor ${tensor.name}: shape ${tensor.ne.join('x')} does not match ${tensor.data.length} values`);
    str(tensor.name);
    u32(tensor.ne.length);
    for (const dimension of tensor.ne) u64(dimension);
    u32(GGML_TYPE.F32);
    u64(offset);
    offset += Math.ceil((count * 4) / alignment) * alignment;
  }
  pad();
  for (const tensor of tensors) {
    const data = Buffer.alloc(tensor.data.length * 4);
    for (let i = 0; i < tensor.data.length; i++) data.writeFloatLE(tensor.data[i]!, i * 4);
    push(data);
    pad();
  }
  return Buffer.concat(parts, length);
}

export async function writeGguf(path: string, metadata: Array<[string, GgufWriteValue]>, tensors: GgufWriteTensor[]): Promise<void> {
  await writeFile(path, encodeGguf(metadata, tensors));
}
