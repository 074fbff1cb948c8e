/**
 * A llama-architecture GGUF model's hyperparameters and frozen weights, dequantized to float
 * arrays for the trainer, and an estimate of the memory that training it takes (with a check
 * that rejects models too large for the machine).
 */
import { totalmem } from 'node:os';
import type { GgufValue } from '../../gguf/format.js';
import type { GgufFile } from '../../gguf/reader.js';

/** Float32Array for training; Float64Array for gradient checks in tests. */
export type FloatArray = Float32Array | Float64Array;
export type Precision = 'f32' | 'f64';

export interface LlamaHyperparameters {
  embeddingLength: number;
  blockCount: number;
  feedForwardLength: number;
  headCount: number;
  headCountKv: number;
  /** Per-head dimension (attention.key_length, else embeddingLength / headCount). */
  headDim: number;
  /** Rotated dimensions per head (rope.dimension_count, else headDim). */
  ropeDimensionCount: number;
  ropeFreqBase: number;
  /** 1 / linear rope scaling factor (1 without scaling). */
  ropeFreqScale: number;
  rmsEpsilon: number;
  contextLength: number;
  vocabSize: number;
}

export interface LlamaLayerWeights {
  attnNorm: FloatArray;
  attnQ: FloatArray;
  attnK: FloatArray;
  attnV: FloatArray;
  attnOutput: FloatArray;
  ffnNorm: FloatArray;
  ffnGate: FloatArray;
  ffnUp: FloatArray;
  ffnDown: FloatArray;
}

export interface LlamaWeights {
  hparams: LlamaHyperparameters;
  precision: Precision;
  /** vocab × embedding (row per token). */
  tokenEmbd: FloatArray;
  outputNorm: FloatArray;
  /** vocab × embedding; token_embd when the model ties them. */
  output: FloatArray;
  /** Llama 3 rope frequency factors (rope_freqs.weight), if the model has them. */
  ropeFreqFactors: FloatArray | undefined;
  layers: LlamaLayerWeights[];
}

function numberValue(metadata: Map<string, GgufValue>, key: string, fallback?: number): number {
  const value = metadata.get(key);
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  if (value === undefined && fallback !== undefined) return fallback;
  throw new Error(`GGUF metadata ${key} is missing or not a number`);
}

/** The model's hyperparameters; throws for an architecture other than llama. */
export function readLlamaHyperparameters(file: GgufFile): LlamaHyperparameters {
  const { metadata } = file;
  const architecture = metadata.get('general.architecture');
  if (architecture !== 'llama') {
    throw new Error(`the local trainer supports llama-architecture models only; this model is ${JSON.stringify(architecture ?? 'unknown')}`);
  }
  const n = (key: string, fallback?: number) => numberValue(metadata, `llama.${key}`, fallback);
  const embeddingLength = n('embedding_length');
  const headCount = n('attention.head_count');
  const headCountKv = n('attention.head_count_kv', headCount);
  const headDim = n('attention.key_length', embeddingLength / headCount);
  if (n('attention.value_length', headDim) !== headDim) throw new Error('models with attention.value_length ≠ key_length are not supported');
  if (!Number.isInteger(headDim) || headCount % headCountKv !== 0) throw new Error('inconsistent attention head counts');
  const scalingType = metadata.get('llama.rope.scaling.type');
  let ropeFreqScale = 1;
  if (scalingType !== undefined && scalingType !== 'none') {
    if (scalingType !== 'linear') throw new Error(`rope scaling ${String(scalingType)} is not supported by the local trainer`);
    ropeFreqScale = 1 / n('rope.scaling.factor', 1);
  }
  const tokens = metadata.get('tokenizer.ggml.tokens');
  const embd = file.tensors.get('token_embd.weight');
  const vocabSize = n('vocab_size', Array.isArray(tokens) ? tokens.length : (embd?.ne[1] ?? NaN));
  if (!Number.isFinite(vocabSize)) throw new Error('cannot tell the vocabulary size');
  return {
    embeddingLength,
    blockCount: n('block_count'),
    feedForwardLength: n('feed_forward_length'),
    headCount,
    headCountKv,
    headDim,
    ropeDimensionCount: n('rope.dimension_count', headDim),
    ropeFreqBase: n('rope.freq_base', 10000),
    ropeFreqScale,
    rmsEpsilon: n('attention.layer_norm_rms_epsilon', 1e-5),
    contextLength: n('context_length', 2048),
    vocabSize,
  };
}

/**
 * Reads the frozen weights (checking every shape), as Float32Array (or Float64Array), or into
 * arrays from `allocate` (shared memory for multi-threaded kernels).
 */
export function loadLlamaWeights(file: GgufFile, precision: Precision = 'f32', allocate?: (length: number) => FloatArray): LlamaWeights {
  const hp = readLlamaHyperparameters(file);
  const d = hp.embeddingLength;
  const qDim = hp.headCount * hp.headDim;
  const kvDim = hp.headCountKv * hp.headDim;
  const read = (name: string, ne: number[]): FloatArray => {
    const info = file.tensors.get(name);
    if (!info) throw new Error(`model tensor ${name} is missing`);
    const shape = info.ne.length === 1 ? [info.ne[0]!] : info.ne.slice(0, 2);
    if (shape.length !== ne.length || shape.some((v, i) => v !== ne[i])) {
      throw new Error(`model tensor ${name} has shape [${info.ne.join(', ')}], expected [${ne.join(', ')}]`);
    }
    const values = file.readTensor(name);
    if (allocate) {
      const out = allocate(values.length);
      out.set(values);
      return out;
    }
    return precision === 'f64' ? Float64Array.from(values) : values;
  };
  const tokenEmbd = read('token_embd.weight', [d, hp.vocabSize]);
  const output = file.tensors.has('output.weight') ? read('output.weight', [d, hp.vocabSize]) : tokenEmbd;
  const ropeFreqFactors = file.tensors.has('rope_freqs.weight') ? read('rope_freqs.weight', [hp.ropeDimensionCount / 2]) : undefined;
  const layers: LlamaLayerWeights[] = [];
  for (let l = 0; l < hp.blockCount; l++) {
    const p = `blk.${l}.`;
    layers.push({
      attnNorm: read(`${p}attn_norm.weight`, [d]),
      attnQ: read(`${p}attn_q.weight`, [d, qDim]),
      attnK: read(`${p}attn_k.weight`, [d, kvDim]),
      attnV: read(`${p}attn_v.weight`, [d, kvDim]),
      attnOutput: read(`${p}attn_output.weight`, [qDim, d]),
      ffnNorm: read(`${p}ffn_norm.weight`, [d]),
      ffnGate: read(`${p}ffn_gate.weight`, [d, hp.feedForwardLength]),
      ffnUp: read(`${p}ffn_up.weight`, [d, hp.feedForwardLength]),
      ffnDown: read(`${p}ffn_down.weight`, [hp.feedForwardLength, d]),
    });
  }
  return { hparams: hp, precision, tokenEmbd, outputNorm: read('output_norm.weight', [d]), output, ropeFreqFactors, layers };
}

export interface TrainingMemoryOptions {
  rank: number;
  /** LoRA targets per block. */
  targetsPerBlock: number;
  /** Longest sequence trained on (tokens). */
  maxSequenceLength: number;
  /** Bytes per float (4 for f32). */
  bytesPerFloat?: number;
}

/** Parameter count of the frozen model (tied output counted once). */
export function llamaParameterCount(hp: LlamaHyperparameters, tiedOutput = false): number {
  const d = hp.embeddingLength;
  const qDim = hp.headCount * hp.headDim;
  const kvDim = hp.headCountKv * hp.headDim;
  const perBlock = 2 * d + d * qDim + 2 * d * kvDim + qDim * d + 3 * d * hp.feedForwardLength;
  return hp.vocabSize * d * (tiedOutput ? 1 : 2) + d + hp.blockCount * perBlock;
}

/**
 * Bytes that training takes, roughly: the frozen weights as floats, the LoRA parameters with
 * their gradients and AdamW moments (×5), and the activations kept for the backward pass of
 * one sequence (per block: the residual stream, norms, q/k/v, attention probabilities, the
 * FFN activations; plus the logits of a chunk of positions).
 */
export function estimateTrainingMemoryBytes(hp: LlamaHyperparameters, options: TrainingMemoryOptions): number {
  const f = options.bytesPerFloat ?? 4;
  const d = hp.embeddingLength;
  const T = options.maxSequenceLength;
  const qDim = hp.headCount * hp.headDim;
  const kvDim = hp.headCountKv * hp.headDim;
  const weights = llamaParameterCount(hp) * f;
  const loraPerBlock = options.targetsPerBlock * options.rank * (2 * d + Math.max(d, hp.feedForwardLength));
  const lora = 5 * hp.blockCount * loraPerBlock * f;
  const perBlockActivations = T * (5 * d + qDim + 2 * kvDim + 3 * hp.feedForwardLength + 7 * options.rank) + hp.headCount * T * T;
  const gradients = T * (3 * d + 3 * hp.feedForwardLength + qDim + 2 * kvDim) + 2 * T * T;
  const activations = (hp.blockCount * perBlockActivations + gradients + 64 * hp.vocabSize) * f;
  return weights + lora + activations;
}

/** Throws when training would need more than `limitBytes` (default: 75% of the machine's memory). */
export function assertTrainingFits(hp: LlamaHyperparameters, options: TrainingMemoryOptions, limitBytes = totalmem() * 0.75): void {
  const needed = estimateTrainingMemoryBytes(hp, options);
  if (needed > limitBytes) {
    const gib = (bytes: number) => (bytes / 2 ** 30).toFixed(1);
    throw new Error(`model too large for the local trainer: training needs ~${gib(needed)} GiB, the limit is ${gib(limitBytes)} GiB`);
  }
}
