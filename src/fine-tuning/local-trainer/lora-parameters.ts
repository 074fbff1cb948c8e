/**
 * The trainable LoRA parameters: for each block and target matrix W (ne = [in, out]), A (rank
 * × in, seeded uniform in ±1/sqrt(in), like PEFT's kaiming-uniform) and B (out × rank, zeros),
 * with their gradient buffers. The adapted product is W x + (alpha / rank) · B (A x).
 */
import type { FloatArray, LlamaHyperparameters, Precision } from './llama-weights.js';
import { mulberry32 } from '../../util/seeded-random.js';
import { floatAllocator, type FloatAllocator } from './float-allocator.js';
import { LORA_TARGETS, type AdapterMatrix, type LoraTarget } from './lora-types.js';

/** A trained LoRA pair (as written to an adapter) with its gradients. */
export interface LoraMatrix extends AdapterMatrix {
  gradA: FloatArray;
  gradB: FloatArray;
}

export function isLoraTarget(name: string): name is LoraTarget {
  return (LORA_TARGETS as readonly string[]).includes(name);
}

/** [inDim, outDim] of a target matrix. */
export function targetShape(hp: LlamaHyperparameters, target: LoraTarget): [number, number] {
  const d = hp.embeddingLength;
  const qDim = hp.headCount * hp.headDim;
  const kvDim = hp.headCountKv * hp.headDim;
  switch (target) {
    case 'attn_q': return [d, qDim];
    case 'attn_k': return [d, kvDim];
    case 'attn_v': return [d, kvDim];
    case 'attn_output': return [qDim, d];
    case 'ffn_gate': return [d, hp.feedForwardLength];
    case 'ffn_up': return [d, hp.feedForwardLength];
    case 'ffn_down': return [hp.feedForwardLength, d];
  }
}

export class LoraParameters {
  readonly scale: number;
  readonly matrices: LoraMatrix[] = [];
  private readonly byKey = new Map<string, LoraMatrix>();

  constructor(
    hp: LlamaHyperparameters,
    readonly rank: number,
    readonly alpha: number,
    readonly targets: readonly LoraTarget[],
    precision: Precision,
    seed: number,
    allocate: FloatAllocator = floatAllocator(precision, false),
  ) {
    if (!Number.isInteger(rank) || rank < 1) throw new Error('LoRA rank must be a positive integer');
    this.scale = alpha / rank;
    const make = allocate;
    const random = mulberry32(seed);
    for (let layer = 0; layer < hp.blockCount; layer++) {
      for (const target of LORA_TARGETS) {
        if (!targets.includes(target)) continue;
        const [inDim, outDim] = targetShape(hp, target);
        const a = make(rank * inDim);
        const bound = 1 / Math.sqrt(inDim);
        for (let i = 0; i < a.length; i++) a[i] = (random() * 2 - 1) * bound;
        const matrix: LoraMatrix = { layer, target, inDim, outDim, a, b: make(outDim * rank), gradA: make(rank * inDim), gradB: make(outDim * rank) };
        this.matrices.push(matrix);
        this.byKey.set(`${layer}.${target}`, matrix);
      }
    }
  }

  get(layer: number, target: LoraTarget): LoraMatrix | undefined {
    return this.byKey.get(`${layer}.${target}`);
  }

  zeroGradients(): void {
    for (const m of this.matrices) {
      m.gradA.fill(0);
      m.gradB.fill(0);
    }
  }

  /** Every trainable tensor with its gradient, in a fixed order (A then B per matrix). */
  parameterList(): Array<{ name: string; value: FloatArray; grad: FloatArray }> {
    const list: Array<{ name: string; value: FloatArray; grad: FloatArray }> = [];
    for (const m of this.matrices) {
      const base = `blk.${m.layer}.${m.target}.weight`;
      list.push({ name: `${base}.lora_a`, value: m.a, grad: m.gradA });
      list.push({ name: `${base}.lora_b`, value: m.b, grad: m.gradB });
    }
    return list;
  }
}
