/**
 * The worker-thread trainer: same results as an in-thread LoraTrainer, the caller's event loop
 * keeps running during a step, errors come back as rejections. The worker runs the compiled
 * dist/ code (`npm run build`; `npm test` builds first), so this suite needs dist/.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTinyGguf } from '../../../test/support/tiny-gguf.js';
import { LoraTrainer, type TrainingExample } from './lora-trainer.js';
import { LoraTrainerWorker } from './trainer-worker-client.js';

const workerUrl = new URL('../../../dist/fine-tuning/local-trainer/trainer-worker.js', import.meta.url);
const directory = mkdtempSync(join(tmpdir(), 'chatgate-lora-worker-'));
const modelPath = join(directory, 'tiny.gguf');

const EXAMPLES: TrainingExample[] = [0, 1, 2].map((k) => {
  const tokens = [1, 3, 300 + k, 271, ...Array.from({ length: 40 }, (_, i) => 262 + ((i * 7 + k * 13) % 90))];
  return { tokens, lossMask: tokens.map((_, i) => (i >= 4 ? 1 : 0)) };
});

beforeAll(async () => {
  await writeTinyGguf(modelPath, { seed: 5, embeddingLength: 128, blockCount: 2, feedForwardLength: 256, headCount: 4 });
});
afterAll(() => rmSync(directory, { recursive: true, force: true }));

describe.skipIf(!existsSync(workerUrl))('LoraTrainerWorker', () => {
  it('trains like the in-thread trainer while the caller stays responsive', async () => {
    const options = { modelPath, rank: 4, alpha: 8, learningRate: 1e-2, batchSize: 3, seed: 2 };
    const local = await LoraTrainer.open(options);
    const worker = await LoraTrainerWorker.open(options, { workerUrl });
    try {
      let ticks = 0;
      const timer = setInterval(() => ticks++, 5);
      const started = Date.now();
      const first = await worker.trainStep(EXAMPLES);
      const elapsed = Date.now() - started;
      clearInterval(timer);
      expect(first).toEqual(local.trainStep(EXAMPLES));
      // The interval kept firing while the worker computed.
      expect(ticks).toBeGreaterThanOrEqual(Math.floor(elapsed / 5 / 4));
      expect(await worker.trainStep(EXAMPLES)).toEqual(local.trainStep(EXAMPLES));
      expect(worker.step).toBe(2);
      expect(await worker.evaluate(EXAMPLES)).toEqual(local.evaluate(EXAMPLES));
      await worker.saveCheckpoint(join(directory, 'worker.ckpt'));
      await local.loadCheckpoint(join(directory, 'worker.ckpt'));
      expect(local.step).toBe(2);
      await expect(worker.trainStep([])).rejects.toThrow(/at least one example/);
    } finally {
      await worker.close();
    }
  });

  it('rejects opening a model it cannot train', async () => {
    await expect(LoraTrainerWorker.open({ modelPath: join(directory, 'missing.gguf'), learningRate: 1e-3, batchSize: 1 }, { workerUrl })).rejects.toThrow(/ENOENT/);
  });
});
