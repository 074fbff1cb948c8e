/** The LoRA target matrices and the shape of one trained pair, shared by the parameters, the model and the adapter writer. */
import type { FloatArray } from './llama-weights.js';

export const LORA_TARGETS = ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down'] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];

/** One adapted matrix's LoRA pair, as written to an adapter. */
export interface AdapterMatrix {
  layer: number;
  target: LoraTarget;
  inDim: number;
  outDim: number;
  /** rank × inDim, row-major. */
  a: FloatArray;
  /** outDim × rank, row-major. */
  b: FloatArray;
}
