/**
 * Multi-threaded kernels: a trainer with threads: 2 trains bit-identically to one thread.
 * Helper threads run compiled code, so this suite uses the dist/ build (`npm test` builds first).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTinyGguf } from '../../../test/support/tiny-gguf.js';
import type * as TrainerModule from './lora-trainer.js';
import type { TrainingExample } from './lora-trainer.js';

const distTrainer = new URL('../../../dist/fine-tuning/local-trainer/lora-trainer.js', import.meta.url);
const directory = mkdtempSync(join(tmpdir(), 'chatgate-lora-parallel-'));
const modelPath = join(directory, 'tiny.gguf');

const EXAMPLES: TrainingExample[] = [0, 1, 2].map((k) => {
  const tokens = [1, 3, 300 + k, ...Array.from({ length: 45 + k }, (_, i) => 262 + ((i * 11 + k * 17) % 90))];
  return { tokens, lossMask: tokens.map((_, i) => (i >= 3 ? 1 : 0)) };
});

beforeAll(async () => {
  await writeTinyGguf(modelPath, { seed: 8, embeddingLength: 96, blockCount: 2, feedForwardLength: 160, headCount: 6, headCountKv: 2 });
});
afterAll(() => rmSync(directory, { recursive: true, force: true }));

describe.skipIf(!existsSync(distTrainer))('ParallelKernels', () => {
  it('trains bit-identically on 2 threads and on 1', async () => {
    const { LoraTrainer } = (await import(pathToFileURL(distTrainer.pathname).href)) as typeof TrainerModule;
    const run = async (threads: number) => {
      const trainer = await LoraTrainer.open({ modelPath, rank: 4, alpha: 8, learningRate: 1e-2, batchSize: 3, seed: 4, threads });
      try {
        const losses = [];
        for (let step = 0; step < 3; step++) losses.push(trainer.trainStep(EXAMPLES).loss);
        losses.push(trainer.evaluate(EXAMPLES).loss);
        const adapter = join(directory, `adapter-${threads}.gguf`);
        await trainer.writeAdapter(adapter);
        return { losses, adapter: readFileSync(adapter) };
      } finally {
        await trainer.close();
      }
    };
    const one = await run(1);
    const two = await run(2);
    expect(two.losses).toEqual(one.losses);
    expect(two.adapter.equals(one.adapter)).toBe(true);
  });
});
