/**
 * Writes GGUF v3 files: metadata of every scalar type and arrays of them, and tensors given as
 * their encoded bytes, laid out as llama.cpp's gguf loader expects (data section aligned, each
 * tensor's offset a multiple of `general.alignment`, default 32).
 *
 * `encodeGguf`/`writeGguf` are the trainer's short form: scalar metadata (string, uint32,
 * float32) and float32 tensors. `encodeGgufFile` takes any metadata and tensor type (the
 * synthetic test model writes f16 tensors, bools, arrays).
 */
import { writeFile } from 'node:fs/promises';
import { GGML_TYPE, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_VALUE_TYPE } from './format.js';

export type GgufWriteScalar = number | string | boolean;

/** One metadata entry: `type` is a GGUF_VALUE_TYPE; arrays name their element type. */
export type GgufMetadataEntry =
  | { key: string; type: number; value: GgufWriteScalar }
  | { key: string; type: typeof GGUF_VALUE_TYPE.ARRAY; elemType: number; value: GgufWriteScalar[] };

/** A tensor already encoded (little-endian bytes of ggml `type`). */
export interface GgufEncodedTensor {
  name: string;
  /** ne[0] (contiguous) first. */
  ne: number[];
  /** ggml type id (GGML_TYPE). */
  type: number;
  data: Buffer;
}

/** Sequential little-endian writer that tracks the length (for padding). */
class ByteWriter {
  private readonly chunks: Buffer[] = [];
  length = 0;
  push(buffer: Buffer): void {
    this.chunks.push(buffer);
    this.length += buffer.length;
  }
  private fixed(size: number, write: (buffer: Buffer) => void): void {
    const buffer = Buffer.alloc(size);
    write(buffer);
    this.push(buffer);
  }
  u32(value: number): void {
    this.fixed(4, (b) => b.writeUInt32LE(value));
  }
  u64(value: number): void {
    this.fixed(8, (b) => b.writeBigUInt64LE(BigInt(value)));
  }
  str(text: string): void {
    const bytes = Buffer.from(text, 'utf8');
    this.u64(bytes.length);
    this.push(bytes);
  }
  pad(alignment: number): void {
    const rem = this.length % alignment;
    if (rem !== 0) this.push(Buffer.alloc(alignment - rem));
  }
  scalar(type: number, value: GgufWriteScalar): void {
    switch (type) {
      case GGUF_VALUE_TYPE.UINT8: return this.fixed(1, (b) => b.writeUInt8(value as number));
      case GGUF_VALUE_TYPE.INT8: return this.fixed(1, (b) => b.writeInt8(value as number));
      case GGUF_VALUE_TYPE.UINT16: return this.fixed(2, (b) => b.writeUInt16LE(value as number));
      case GGUF_VALUE_TYPE.INT16: return this.fixed(2, (b) => b.writeInt16LE(value as number));
      case GGUF_VALUE_TYPE.UINT32: return this.u32(value as number);
      case GGUF_VALUE_TYPE.INT32: return this.fixed(4, (b) => b.writeInt32LE(value as number));
      case GGUF_VALUE_TYPE.FLOAT32: return this.fixed(4, (b) => b.writeFloatLE(value as number));
      case GGUF_VALUE_TYPE.BOOL: return this.fixed(1, (b) => b.writeUInt8(value ? 1 : 0));
      case GGUF_VALUE_TYPE.STRING: return this.str(value as string);
      case GGUF_VALUE_TYPE.UINT64: return this.u64(value as number);
      case GGUF_VALUE_TYPE.INT64: return this.fixed(8, (b) => b.writeBigInt64LE(BigInt(value as number)));
      case GGUF_VALUE_TYPE.FLOAT64: return this.fixed(8, (b) => b.writeDoubleLE(value as number));
      default: throw new Error(`unsupported scalar type ${type}`);
    }
  }
  toBuffer(): Buffer {
    return Buffer.concat(this.chunks, this.length);
  }
}

/** The alignment that a `general.alignment` entry sets, else the default. */
function alignmentOf(metadata: readonly GgufMetadataEntry[]): number {
  const entry = metadata.find((candidate) => candidate.key === 'general.alignment');
  return entry ? (entry.value as number) : GGUF_DEFAULT_ALIGNMENT;
}

/** The file's bytes: header, metadata, tensor infos, then each tensor's data padded to the alignment. */
export function encodeGgufFile(metadata: readonly GgufMetadataEntry[], tensors: readonly GgufEncodedTensor[]): Buffer {
  const alignment = alignmentOf(metadata);
  const w = new ByteWriter();
  w.push(Buffer.from(GGUF_MAGIC, 'ascii'));
  w.u32(3);
  w.u64(tensors.length);
  w.u64(metadata.length);
  for (const entry of metadata) {
    w.str(entry.key);
    w.u32(entry.type);
    if ('elemType' in entry) {
      w.u32(entry.elemType);
      w.u64(entry.value.length);
      for (const value of entry.value) w.scalar(entry.elemType, value);
    } else {
      w.scalar(entry.type, entry.value);
    }
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const tensor of tensors) {
    w.str(tensor.name);
    w.u32(tensor.ne.length);
    for (const dimension of tensor.ne) w.u64(dimension);
    w.u32(tensor.type);
    w.u64(offset);
    offsets.push(offset);
    offset += Math.ceil(tensor.data.length / alignment) * alignment;
  }
  w.pad(alignment);
  const dataStart = w.length;
  tensors.forEach((tensor, index) => {
    if (w.length - dataStart !== offsets[index]) throw new Error('offset mismatch');
    w.push(tensor.data);
    w.pad(alignment);
  });
  return w.toBuffer();
}

// The trainer's short form.

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

const SHORT_TYPE = { string: GGUF_VALUE_TYPE.STRING, uint32: GGUF_VALUE_TYPE.UINT32, float32: GGUF_VALUE_TYPE.FLOAT32 } as const;

/** The values as little-endian float32 bytes. */
export function float32Bytes(values: Float32Array): Buffer {
  const data = Buffer.alloc(values.length * 4);
  for (let i = 0; i < values.length; i++) data.writeFloatLE(values[i]!, i * 4);
  return data;
}

/** The file's bytes. `general.alignment` (uint32) in `metadata` sets the alignment (default 32). */
export function encodeGguf(metadata: Array<[string, GgufWriteValue]>, tensors: GgufWriteTensor[]): Buffer {
  const entries = metadata.map(([key, entry]): GgufMetadataEntry => ({ key, type: SHORT_TYPE[entry.type], value: entry.value }));
  const encoded = tensors.map((tensor): GgufEncodedTensor => {
    const count = tensor.ne.reduce((a, b) => a * b, 1);
    if (count !== tensor.data.length) throw new Error(`tensor ${tensor.name}: shape ${tensor.ne.join('x')} does not match ${tensor.data.length} values`);
    return { name: tensor.name, ne: tensor.ne, type: GGML_TYPE.F32, data: float32Bytes(tensor.data) };
  });
  return encodeGgufFile(entries, encoded);
}

export async function writeGguf(path: string, metadata: Array<[string, GgufWriteValue]>, tensors: GgufWriteTensor[]): Promise<void> {
  await writeFile(path, encodeGguf(metadata, tensors));
}
