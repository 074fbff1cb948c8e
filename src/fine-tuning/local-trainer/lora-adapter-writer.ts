/**
 * Writes LoRA parameters as a GGUF LoRA adapter that llama.cpp loads (llama_adapter_lora_init):
 * metadata general.architecture = "llama", general.type = "adapter", adapter.type = "lora",
 * adapter.lora.alpha (float32); for each adapted matrix blk.N.<target>.weight, the f32 tensors
 * `…weight.lora_a` with ne = [in, rank] and `…weight.lora_b` with ne = [rank, out] (llama.cpp
 * checks model.ne[0] = a.ne[0], model.ne[1] = b.ne[1], a.ne[1] = b.ne[0]) and applies
 * y += scale · (alpha / rank) · B (A x).
 */
import { encodeGguf, type GgufWriteTensor } from '../../gguf/writer.js';
import type { AdapterMatrix } from './lora-types.js';
import { writeFile } from 'node:fs/promises';

export interface LoraAdapterContents {
  rank: number;
  alpha: number;
  matrices: readonly AdapterMatrix[];
  name?: string;
}

export function encodeLoraAdapter(adapter: LoraAdapterContents): Buffer {
  const { rank } = adapter;
  const tensors: GgufWriteTensor[] = [];
  for (const m of adapter.matrices) {
    if (m.a.length !== rank * m.inDim || m.b.length !== m.outDim * rank) throw new Error(`LoRA matrix blk.${m.layer}.${m.target} has the wrong size`);
    const base = `blk.${m.layer}.${m.target}.weight`;
    tensors.push({ name: `${base}.lora_a`, ne: [m.inDim, rank], data: Float32Array.from(m.a) });
    tensors.push({ name: `${base}.lora_b`, ne: [rank, m.outDim], data: Float32Array.from(m.b) });
  }
  return encodeGguf(
    [
      ['general.architecture', { type: 'string', value: 'llama' }],
      ['general.type', { type: 'string', value: 'adapter' }],
      ['general.name', { type: 'string', value: adapter.name ?? 'chatgate-lora' }],
      ['general.alignment', { type: 'uint32', value: 32 }],
      ['adapter.type', { type: 'string', value: 'lora' }],
      ['adapter.lora.alpha', { type: 'float32', value: adapter.alpha }],
    ],
    tensors,
  );
}

export async function writeLoraAdapter(path: string, adapter: LoraAdapterContents): Promise<void> {
  await writeFile(path, encodeLoraAdapter(adapter));
}
