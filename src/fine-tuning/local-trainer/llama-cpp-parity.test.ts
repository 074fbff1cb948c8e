/**
 * Parity with llama.cpp: the trainer's forward pass gives the same next-token distributions as
 * node-llama-cpp for the same tokens, without an adapter and with a random non-zero adapter
 * written by lora-adapter-writer and loaded through `createContext({ lora })`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Llama, LlamaModel, Token } from 'node-llama-cpp';
import { writeTinyGguf, type TinyGgufOptions } from '../../../test/support/tiny-gguf.js';
import { importNodeLlamaCpp } from '../../providers/llama-cpp/node-llama-cpp-module.js';
import { openGguf } from '../../gguf/reader.js';
import { loadLlamaWeights } from './llama-weights.js';
import { LoraParameters } from './lora-parameters.js';
import { LORA_TARGETS } from './lora-types.js';
import { LlamaLoraModel } from './llama-lora-model.js';
import { selectKernels } from './matmul-kernels.js';
import { writeLoraAdapter } from './lora-adapter-writer.js';
import { mulberry32 } from '../../util/seeded-random.js';

const directory = mkdtempSync(join(tmpdir(), 'chatgate-lora-parity-'));
let llama: Llama;

const MODEL: TinyGgufOptions = {
  seed: 11, embeddingLength: 64, blockCount: 2, feedForwardLength: 96, headCount: 4, headCountKv: 2, suppressInvalidUtf8: false,
};
const TOKENS = [1, 300, 271, 5 + 0x41, 262, 330, 261, 300, 2, 4, 3, 290, 280, 270, 305, 310, 320, 333, 350, 397];

beforeAll(async () => {
  const { getLlama, LlamaLogLevel } = await importNodeLlamaCpp();
  llama = await getLlama({ gpu: false, build: 'never', skipDownload: true, logLevel: LlamaLogLevel.error });
});
afterAll(async () => {
  await llama?.dispose();
  rmSync(directory, { recursive: true, force: true });
});

/** Our model with a random adapter (B non-zero) when `adapterSeed` is set. */
function ourModel(modelPath: string, adapterSeed?: number): LlamaLoraModel {
  const file = openGguf(modelPath);
  const weights = loadLlamaWeights(file);
  file.close();
  const lora = new LoraParameters(weights.hparams, 4, 8, LORA_TARGETS, 'f32', adapterSeed ?? 0);
  if (adapterSeed !== undefined) {
    const random = mulberry32(adapterSeed + 1);
    for (const m of lora.matrices) for (let i = 0; i < m.b.length; i++) m.b[i] = (random() * 2 - 1) * 0.3;
  }
  return new LlamaLoraModel(weights, lora, selectKernels('optimised'));
}

function logSoftmaxRows(logits: Float32Array, vocab: number): Float64Array {
  const out = new Float64Array(logits.length);
  for (let o = 0; o < logits.length; o += vocab) {
    let max = -Infinity;
    for (let j = 0; j < vocab; j++) max = Math.max(max, logits[o + j]!);
    let sum = 0;
    for (let j = 0; j < vocab; j++) sum += Math.exp(logits[o + j]! - max);
    const lse = max + Math.log(sum);
    for (let j = 0; j < vocab; j++) out[o + j] = logits[o + j]! - lse;
  }
  return out;
}

interface ContextSetup {
  adapterPath?: string;
  /** f32 KV cache and no flash attention (tightest comparison), else node-llama-cpp's defaults. */
  exactCache: boolean;
}

/** llama.cpp's log-probabilities for every position (rows × vocab). */
async function llamaCppLogProbs(model: LlamaModel, tokens: number[], setup: ContextSetup): Promise<Float64Array> {
  const context = await model.createContext({
    contextSize: 64,
    sequences: 1,
    threads: 1,
    ...(setup.exactCache ? { flashAttention: false, experimentalKvCacheKeyType: 'F32' as const, experimentalKvCacheValueType: 'F32' as const } : {}),
    ...(setup.adapterPath ? { lora: { adapters: [{ filePath: setup.adapterPath, scale: 1 }] } } : {}),
  });
  try {
    const sequence = context.getSequence();
    const results = await sequence.controlledEvaluate(
      tokens.map((token) => [token as Token, { generateNext: { probabilities: true, options: { temperature: 0 } } }] as const),
    );
    const vocab = (model.fileInfo.metadata.tokenizer.ggml.tokens as string[]).length;
    const out = new Float64Array(tokens.length * vocab);
    results.forEach((result, p) => {
      const probabilities = result?.next.probabilities;
      if (!probabilities) throw new Error(`no probabilities at position ${p}`);
      expect(probabilities.size).toBe(vocab);
      for (const [token, probability] of probabilities) out[p * vocab + token] = Math.log(probability);
    });
    return out;
  } finally {
    await context.dispose();
  }
}

function maxAbsDiff(a: Float64Array, b: Float64Array): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

describe.each([
  // f32 weights with an f32 KV cache: the same arithmetic up to summation order. llama.cpp's
  // defaults (f16 KV cache) and f16 weights (ggml converts activations to f16 for the dot
  // products) round more.
  { tensorType: 'f32' as const, tolerance: { exact: 1e-4, defaults: 1e-2 } },
  { tensorType: 'f16' as const, tolerance: { exact: 1e-2, defaults: 1e-2 } },
])('forward parity with llama.cpp ($tensorType weights)', ({ tensorType, tolerance }) => {
  const modelPath = join(directory, `parity-${tensorType}.gguf`);
  const adapterPath = join(directory, `parity-${tensorType}-adapter.gguf`);
  let model: LlamaModel;
  let base: Float64Array;
  let adapted: Float64Array;
  let vocab: number;

  beforeAll(async () => {
    await writeTinyGguf(modelPath, { ...MODEL, tensorType });
    model = await llama.loadModel({ modelPath, gpuLayers: 0 });
    const ours = ourModel(modelPath);
    vocab = ours.weights.hparams.vocabSize;
    base = logSoftmaxRows(ours.logits(TOKENS), vocab);
    const withAdapter = ourModel(modelPath, 5);
    await writeLoraAdapter(adapterPath, { rank: withAdapter.lora.rank, alpha: withAdapter.lora.alpha, matrices: withAdapter.lora.matrices });
    adapted = logSoftmaxRows(withAdapter.logits(TOKENS), vocab);
  });
  afterAll(async () => {
    await model?.dispose();
  });

  it('matches without an adapter', async () => {
    const exact = maxAbsDiff(base, await llamaCppLogProbs(model, TOKENS, { exactCache: true }));
    const defaults = maxAbsDiff(base, await llamaCppLogProbs(model, TOKENS, { exactCache: false }));
    console.log(`[parity ${tensorType}] no adapter: max |Δ log p| = ${exact.toExponential(2)} (f32 KV cache), ${defaults.toExponential(2)} (default context)`);
    expect(exact).toBeLessThan(tolerance.exact);
    expect(defaults).toBeLessThan(tolerance.defaults);
  });

  it('matches with a random LoRA adapter loaded by llama.cpp', async () => {
    // The adapter must matter, or the comparison would prove nothing.
    expect(maxAbsDiff(base, adapted)).toBeGreaterThan(0.5);
    const exact = maxAbsDiff(adapted, await llamaCppLogProbs(model, TOKENS, { exactCache: true, adapterPath }));
    const defaults = maxAbsDiff(adapted, await llamaCppLogProbs(model, TOKENS, { exactCache: false, adapterPath }));
    console.log(`[parity ${tensorType}] with adapter: max |Δ log p| = ${exact.toExponential(2)} (f32 KV cache), ${defaults.toExponential(2)} (default context)`);
    expect(exact).toBeLessThan(tolerance.exact);
    expect(defaults).toBeLessThan(tolerance.defaults);
  });
});
