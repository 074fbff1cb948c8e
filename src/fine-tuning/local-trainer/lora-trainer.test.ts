/**
 * The trainer end to end: loss falls on a few fixed sequences, and llama.cpp with the written
 * adapter greedily reproduces the trained continuations (the base model does not); checkpoints
 * resume bit-identically; async and sync steps agree; unsupported models are refused.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Llama, LlamaModel, Token } from 'node-llama-cpp';
import { writeTinyGguf } from '../../../test/support/tiny-gguf.js';
import { importNodeLlamaCpp } from '../../providers/llama-cpp/node-llama-cpp-module.js';
import { writeGguf } from '../../gguf/writer.js';
import { LoraTrainer, type TrainingExample } from './lora-trainer.js';

const directory = mkdtempSync(join(tmpdir(), 'chatgate-lora-trainer-'));
const modelPath = join(directory, 'tiny.gguf');

/** Prompts (BOS first) and the continuations to learn (printable tokens the base model is unlikely to produce). */
const PAIRS: Array<{ prompt: number[]; answer: number[] }> = [
  { prompt: [1, 3, 300, 271], answer: [280, 281, 282, 283, 284, 285] },
  { prompt: [1, 3, 301, 272], answer: [330, 320, 310, 300, 290, 270] },
  { prompt: [1, 3, 302, 273], answer: [262, 333, 262, 333, 262, 333] },
  { prompt: [1, 3, 303, 274], answer: [350, 340, 351, 341, 352, 342] },
];
const EXAMPLES: TrainingExample[] = PAIRS.map(({ prompt, answer }) => ({
  tokens: [...prompt, ...answer],
  lossMask: [...prompt.map(() => 0), ...answer.map(() => 1)],
}));

beforeAll(async () => {
  await writeTinyGguf(modelPath, { seed: 42, embeddingLength: 64, blockCount: 2, feedForwardLength: 128, headCount: 4, headCountKv: 4 });
});
afterAll(() => rmSync(directory, { recursive: true, force: true }));

const open = (extra: Partial<Parameters<typeof LoraTrainer.open>[0]> = {}) =>
  LoraTrainer.open({ modelPath, rank: 8, alpha: 16, learningRate: 1e-2, batchSize: EXAMPLES.length, seed: 1, ...extra });

describe('LoraTrainer training', () => {
  let llama: Llama;
  let model: LlamaModel;
  beforeAll(async () => {
    const { getLlama, LlamaLogLevel } = await importNodeLlamaCpp();
    llama = await getLlama({ gpu: false, build: 'never', skipDownload: true, logLevel: LlamaLogLevel.error });
    model = await llama.loadModel({ modelPath, gpuLayers: 0 });
  });
  afterAll(async () => {
    await model?.dispose();
    await llama?.dispose();
  });

  /** How many continuation tokens llama.cpp's greedy decoding gets right, over all prompts. */
  async function greedyMatches(adapterPath?: string): Promise<number> {
    const context = await model.createContext({
      contextSize: 64,
      sequences: 1,
      threads: 1,
      ...(adapterPath ? { lora: { adapters: [{ filePath: adapterPath, scale: 1 }] } } : {}),
    });
    try {
      const sequence = context.getSequence();
      let matches = 0;
      for (const { prompt, answer } of PAIRS) {
        await sequence.clearHistory();
        const generated: number[] = [];
        for await (const token of sequence.evaluate(prompt as Token[], { temperature: 0 })) {
          generated.push(token);
          if (generated.length === answer.length) break;
        }
        matches += generated.filter((token, i) => token === answer[i]).length;
      }
      return matches;
    } finally {
      await context.dispose();
    }
  }

  it('lowers the loss and llama.cpp with the adapter reproduces the trained continuations', async () => {
    const trainer = await open();
    const before = trainer.evaluate(EXAMPLES);
    expect(before.tokens).toBe(24);
    let last = before;
    for (let step = 0; step < 60; step++) last = trainer.trainStep(EXAMPLES);
    const after = trainer.evaluate(EXAMPLES);
    const adapterPath = join(directory, 'trained-adapter.gguf');
    await trainer.writeAdapter(adapterPath);
    await trainer.close();
    const total = PAIRS.reduce((n, p) => n + p.answer.length, 0);
    const base = await greedyMatches();
    const adapted = await greedyMatches(adapterPath);
    console.log(`[train] loss ${before.loss.toFixed(3)} → ${after.loss.toFixed(4)} (last step ${last.loss.toFixed(4)}); greedy matches: base ${base}/${total}, with adapter ${adapted}/${total}`);
    expect(after.loss).toBeLessThan(before.loss * 0.1);
    expect(base).toBeLessThan(total / 4);
    expect(adapted).toBe(total);
  });
});

describe('LoraTrainer checkpoints', () => {
  it('resumes bit-identically from a checkpoint', async () => {
    const checkpoint = join(directory, 'resume.ckpt');
    const first = await open({ learningRate: 5e-3 });
    for (let step = 0; step < 3; step++) first.trainStep(EXAMPLES.slice(step % 2, step % 2 + 3));
    await first.saveCheckpoint(checkpoint);
    const continued: number[] = [];
    for (let step = 0; step < 3; step++) continued.push(first.trainStep(EXAMPLES.slice(step, step + 2)).loss);
    await first.writeAdapter(join(directory, 'continued.gguf'));
    expect(first.step).toBe(6);

    const resumed = await open({ learningRate: 5e-3, seed: 999 }); // a different init: everything must come from the checkpoint
    await resumed.loadCheckpoint(checkpoint);
    expect(resumed.step).toBe(3);
    const again: number[] = [];
    for (let step = 0; step < 3; step++) again.push(resumed.trainStep(EXAMPLES.slice(step, step + 2)).loss);
    await resumed.writeAdapter(join(directory, 'resumed.gguf'));
    expect(again).toEqual(continued);
    expect(readFileSync(join(directory, 'resumed.gguf')).equals(readFileSync(join(directory, 'continued.gguf')))).toBe(true);

    const otherRank = await open({ rank: 4 });
    await expect(otherRank.loadCheckpoint(checkpoint)).rejects.toThrow(/different LoRA configuration/);
  });

  it('trainStepAsync gives the same result as trainStep', async () => {
    const sync = await open();
    const async = await open();
    for (let step = 0; step < 2; step++) {
      expect(await async.trainStepAsync(EXAMPLES)).toEqual(sync.trainStep(EXAMPLES));
    }
  });
});

describe('LoraTrainer model checks', () => {
  it('refuses non-llama architectures and models too large for the memory limit', async () => {
    const qwen = join(directory, 'qwen.gguf');
    await writeGguf(qwen, [['general.architecture', { type: 'string', value: 'qwen2' }]], []);
    await expect(LoraTrainer.open({ modelPath: qwen, learningRate: 1e-3, batchSize: 1 })).rejects.toThrow(/llama-architecture models only.*qwen2/);
    await expect(open({ memoryLimitBytes: 1 << 20 })).rejects.toThrow(/too large/);
    await expect(open({ targets: ['attn_q', 'lm_head'] })).rejects.toThrow(/unknown LoRA target/);
  });

  it('uses the reference kernels with the same losses', async () => {
    const optimised = await open();
    const reference = await open({ kernels: 'reference' });
    for (let step = 0; step < 3; step++) {
      const a = optimised.trainStep(EXAMPLES);
      const b = reference.trainStep(EXAMPLES);
      expect(Math.abs(a.loss - b.loss)).toBeLessThan(1e-4);
    }
  });
});
