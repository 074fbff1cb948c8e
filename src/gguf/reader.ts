/**
 * Reads GGUF (v2/v3) files: the metadata (every value type, arrays included), the tensor
 * infos and, on demand, one tensor's data as a Float32Array (F32, F16 and Q8_0 are
 * dequantized). Only the header is read up front; tensor data is read from the file when asked
 * for, so a trainer holds just the tensors it converts.
 *
 * Shapes are GGUF's: `ne[0]` is the contiguous dimension (a matrix's input features), `ne[1]`
 * the rows (its output features).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import {
  GGML_TYPE, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_VALUE_TYPE, ggmlTensorBytes, halfToFloat, LITTLE_ENDIAN, Q8_0_BLOCK, Q8_0_BYTES,
  type GgufScalar, type GgufValue,
} from './format.js';

export interface GgufTensorInfo {
  name: string;
  /** ne[0] (contiguous) first. */
  ne: number[];
  /** ggml type id (GGML_TYPE). */
  type: number;
  /** Absolute file offset of the data. */
  fileOffset: number;
  /** Element count. */
  count: number;
}

export interface GgufFile {
  path: string;
  version: number;
  alignment: number;
  metadata: Map<string, GgufValue>;
  tensors: Map<string, GgufTensorInfo>;
  /** The tensor's values, dequantized to float32. */
  readTensor(name: string): Float32Array;
  close(): void;
}

let halfTable: Float32Array | undefined;
function halfLookup(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = halfToFloat(h);
  }
  return halfTable;
}

/** Buffered sequential reader over the header part of the file. */
class HeaderCursor {
  private buffer = Buffer.alloc(0);
  private bufferStart = 0;
  position = 0;
  constructor(private readonly fd: number, private readonly fileSize: number) {}

  private ensure(bytes: number): void {
    const end = this.position + bytes;
    if (end > this.fileSize) throw new Error('GGUF file is truncated');
    if (this.position >= this.bufferStart && end <= this.bufferStart + this.buffer.length) return;
    const size = Math.min(Math.max(bytes, 1 << 20), this.fileSize - this.position);
    const chunk = Buffer.alloc(size);
    let read = 0;
    while (read < size) {
      const n = readSync(this.fd, chunk, read, size - read, this.position + read);
      if (n === 0) throw new Error('GGUF file is truncated');
      read += n;
    }
    this.buffer = chunk;
    this.bufferStart = this.position;
  }
  /** Advances over `bytes` and returns their index in `this.buffer` (read the buffer after calling). */
  private take(bytes: number): number {
    this.ensure(bytes);
    const at = this.position - this.bufferStart;
    this.position += bytes;
    return at;
  }
  u8(): number { const at = this.take(1); return this.buffer.readUInt8(at); }
  i8(): number { const at = this.take(1); return this.buffer.readInt8(at); }
  u16(): number { const at = this.take(2); return this.buffer.readUInt16LE(at); }
  i16(): number { const at = this.take(2); return this.buffer.readInt16LE(at); }
  u32(): number { const at = this.take(4); return this.buffer.readUInt32LE(at); }
  i32(): number { const at = this.take(4); return this.buffer.readInt32LE(at); }
  f32(): number { const at = this.take(4); return this.buffer.readFloatLE(at); }
  f64(): number { const at = this.take(8); return this.buffer.readDoubleLE(at); }
  u64big(): bigint { const at = this.take(8); return this.buffer.readBigUInt64LE(at); }
  i64big(): bigint { const at = this.take(8); return this.buffer.readBigInt64LE(at); }
  /** A u64 that must fit a JS number (counts, offsets, dimensions). */
  size(): number {
    const value = this.u64big();
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error('GGUF size field too large');
    return Number(value);
  }
  str(): string {
    const length = this.size();
    const at = this.take(length);
    return this.buffer.toString('utf8', at, at + length);
  }
}

function readScalar(cursor: HeaderCursor, type: number): GgufScalar {
  switch (type) {
    case GGUF_VALUE_TYPE.UINT8: return cursor.u8();
    case GGUF_VALUE_TYPE.INT8: return cursor.i8();
    case GGUF_VALUE_TYPE.UINT16: return cursor.u16();
    case GGUF_VALUE_TYPE.INT16: return cursor.i16();
    case GGUF_VALUE_TYPE.UINT32: return cursor.u32();
    case GGUF_VALUE_TYPE.INT32: return cursor.i32();
    case GGUF_VALUE_TYPE.FLOAT32: return cursor.f32();
    case GGUF_VALUE_TYPE.BOOL: return cursor.u8() !== 0;
    case GGUF_VALUE_TYPE.STRING: return cursor.str();
    case GGUF_VALUE_TYPE.UINT64: {
      const value = cursor.u64big();
      return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
    }
    case GGUF_VALUE_TYPE.INT64: {
      const value = cursor.i64big();
      return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(value) : value;
    }
    case GGUF_VALUE_TYPE.FLOAT64: return cursor.f64();
    default: throw new Error(`unknown GGUF value type ${type}`);
  }
}

function readValue(cursor: HeaderCursor, type: number): GgufValue {
  if (type !== GGUF_VALUE_TYPE.ARRAY) return readScalar(cursor, type);
  const elementType = cursor.u32();
  const count = cursor.size();
  if (elementType === GGUF_VALUE_TYPE.ARRAY) throw new Error('nested GGUF arrays are not supported');
  const values: GgufScalar[] = new Array(count);
  for (let i = 0; i < count; i++) values[i] = readScalar(cursor, elementType);
  return values;
}

/** Opens a GGUF file and parses its header; tensor data is read by `readTensor`. */
export function openGguf(path: string): GgufFile {
  const fd = openSync(path, 'r');
  try {
    const fileSize = fstatSync(fd).size;
    const cursor = new HeaderCursor(fd, fileSize);
    const magic = [cursor.u8(), cursor.u8(), cursor.u8(), cursor.u8()];
    if (String.fromCharCode(...magic) !== GGUF_MAGIC) throw new Error(`${path} is not a GGUF file`);
    const version = cursor.u32();
    if (version !== 2 && version !== 3) throw new Error(`unsupported GGUF version ${version}`);
    const tensorCount = cursor.size();
    const kvCount = cursor.size();
    const metadata = new Map<string, GgufValue>();
    for (let i = 0; i < kvCount; i++) {
      const key = cursor.str();
      const type = cursor.u32();
      metadata.set(key, readValue(cursor, type));
    }
    const alignmentValue = metadata.get('general.alignment');
    const alignment = typeof alignmentValue === 'number' && alignmentValue > 0 ? alignmentValue : GGUF_DEFAULT_ALIGNMENT;
    const infos: Array<{ name: string; ne: number[]; type: number; offset: number }> = [];
    for (let i = 0; i < tensorCount; i++) {
      const name = cursor.str();
      const dims = cursor.u32();
      const ne: number[] = [];
      for (let d = 0; d < dims; d++) ne.push(cursor.size());
      const type = cursor.u32();
      const offset = cursor.size();
      infos.push({ name, ne, type, offset });
    }
    const dataStart = Math.ceil(cursor.position / alignment) * alignment;
    const tensors = new Map<string, GgufTensorInfo>();
    for (const info of infos) {
      const count = info.ne.reduce((a, b) => a * b, 1);
      tensors.set(info.name, { name: info.name, ne: info.ne, type: info.type, fileOffset: dataStart + info.offset, count });
    }
    let open = true;
    return {
      path,
      version,
      alignment,
      metadata,
      tensors,
      readTensor(name: string): Float32Array {
        if (!open) throw new Error('GGUF file is closed');
        const info = tensors.get(name);
        if (!info) throw new Error(`tensor ${name} not found in ${path}`);
        const bytes = ggmlTensorBytes(info.type, info.count);
        if (info.fileOffset + bytes > fileSize) throw new Error(`tensor ${name} extends past the end of ${path}`);
        const raw = Buffer.alloc(bytes);
        let read = 0;
        while (read < bytes) {
          const n = readSync(fd, raw, read, bytes - read, info.fileOffset + read);
          if (n === 0) throw new Error(`${path} is truncated`);
          read += n;
        }
        return decodeTensor(raw, info.type, info.count);
      },
      close(): void {
        if (open) {
          open = false;
          closeSync(fd);
        }
      },
    };
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

/** Raw little-endian tensor bytes → float32 values. */
export function decodeTensor(raw: Buffer, type: number, count: number): Float32Array {
  const out = new Float32Array(count);
  const aligned = LITTLE_ENDIAN && raw.byteOffset % 4 === 0;
  if (type === GGML_TYPE.F32) {
    if (aligned) out.set(new Float32Array(raw.buffer, raw.byteOffset, count));
    else for (let i = 0; i < count; i++) out[i] = raw.readFloatLE(i * 4);
  } else if (type === GGML_TYPE.F16) {
    const table = halfLookup();
    if (aligned) {
      const halves = new Uint16Array(raw.buffer, raw.byteOffset, count);
      for (let i = 0; i < count; i++) out[i] = table[halves[i]!]!;
    } else {
      for (let i = 0; i < count; i++) out[i] = table[raw.readUInt16LE(i * 2)]!;
    }
  } else if (type === GGML_TYPE.Q8_0) {
    const table = halfLookup();
    const blocks = count / Q8_0_BLOCK;
    for (let b = 0; b < blocks; b++) {
      const base = b * Q8_0_BYTES;
      const d = table[raw.readUInt16LE(base)]!;
      for (let j = 0; j < Q8_0_BLOCK; j++) out[b * Q8_0_BLOCK + j] = d * raw.readInt8(base + 2 + j);
    }
  } else {
    throw new Error(`unsupported ggml tensor type ${type}`);
  }
  return out;
}
