/**
 * Training checkpoints: the LoRA parameters, the AdamW state and the step, in one binary file
 * that round-trips bit-exactly (a restarted job resumes identically).
 *
 * Layout: "CGLORACK" · u32 version (1) · u32 header length · JSON header · zero padding to a
 * multiple of 4 · for each tensor of the header's list, in order: its value, AdamW m, AdamW v
 * as little-endian float32.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';

const MAGIC = 'CGLORACK';
const VERSION = 1;

export interface CheckpointHeader {
  rank: number;
  alpha: number;
  targets: string[];
  step: number;
  learningRate: number;
  /** The model's hyperparameters, to refuse a checkpoint of another model. */
  model: Record<string, number>;
  tensors: Array<{ name: string; length: number }>;
}

export interface CheckpointData {
  header: CheckpointHeader;
  /** Per tensor: [value, m, v]. */
  arrays: Array<[Float32Array, Float32Array, Float32Array]>;
}

function toBytes(values: Float32Array): Buffer {
  const out = Buffer.alloc(values.length * 4);
  for (let i = 0; i < values.length; i++) out.writeFloatLE(values[i]!, i * 4);
  return out;
}

export function encodeCheckpoint(data: CheckpointData): Buffer {
  const header = Buffer.from(JSON.stringify(data.header), 'utf8');
  const prefix = Buffer.alloc(16);
  prefix.write(MAGIC, 0, 'ascii');
  prefix.writeUInt32LE(VERSION, 8);
  prefix.writeUInt32LE(header.length, 12);
  const pad = Buffer.alloc((4 - ((16 + header.length) % 4)) % 4);
  const parts: Buffer[] = [prefix, header, pad];
  for (const [value, m, v] of data.arrays) parts.push(toBytes(value), toBytes(m), toBytes(v));
  return Buffer.concat(parts);
}

export function decodeCheckpoint(bytes: Buffer): CheckpointData {
  if (bytes.length < 16 || bytes.toString('ascii', 0, 8) !== MAGIC) throw new Error('not a LoRA trainer checkpoint');
  const version = bytes.readUInt32LE(8);
  if (version !== VERSION) throw new Error(`unsupported checkpoint version ${version}`);
  const headerLength = bytes.readUInt32LE(12);
  const header = JSON.parse(bytes.toString('utf8', 16, 16 + headerLength)) as CheckpointHeader;
  let offset = 16 + headerLength;
  offset += (4 - (offset % 4)) % 4;
  const read = (length: number): Float32Array => {
    if (offset + length * 4 > bytes.length) throw new Error('checkpoint is truncated');
    const out = new Float32Array(length);
    for (let i = 0; i < length; i++) out[i] = bytes.readFloatLE(offset + i * 4);
    offset += length * 4;
    return out;
  };
  const arrays = header.tensors.map(({ length }) => [read(length), read(length), read(length)] as [Float32Array, Float32Array, Float32Array]);
  return { header, arrays };
}

/** Writes atomically (temporary file, then rename). */
export async function saveCheckpointFile(path: string, data: CheckpointData): Promise<void> {
  const temporary = `${path}.tmp-${process.pid}`;
  await writeFile(temporary, encodeCheckpoint(data));
  await rename(temporary, path);
}

export async function loadCheckpointFile(path: string): Promise<CheckpointData> {
  return decodeCheckpoint(await readFile(path));
}
