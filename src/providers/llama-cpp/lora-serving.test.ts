/**
 * LoRA serving: a llama-cpp model configured with `lora` adapters answers differently from the
 * same file without them; both configurations share one loaded LlamaModel (adapters are per
 * context) and the base one is not affected by the other's adapters; a missing or invalid
 * adapter file is a 503 `model_load_failed` naming the adapter, and leaves the shared model
 * usable for the other configurations.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { llamaCppModel, type LlamaCppModelConfig } from '../../config/schema.js';
import type { ChatCompletionRequest } from '../../openai/chat-completion-request.js';
import { TINY_TOKEN_IDS, writeTinyGguf } from '../../../test/support/tiny-gguf.js';
import { openGguf } from '../../gguf/reader.js';
import { readLlamaHyperparameters } from '../../fine-tuning/local-trainer/llama-weights.js';
import { LoraParameters } from '../../fine-tuning/local-trainer/lora-parameters.js';
import { LORA_TARGETS } from '../../fine-tuning/local-trainer/lora-types.js';
import { writeLoraAdapter } from '../../fine-tuning/local-trainer/lora-adapter-writer.js';
import { mulberry32 } from '../../util/seeded-random.js';
import { createLlamaCppProvider, type LlamaCppProvider } from './llama-cpp-provider.js';
import { LoadedModels } from './loaded-models.js';

const directory = mkdtempSync(join(tmpdir(), 'chatgate-lora-serving-'));
const modelPath = join(directory, 'tiny.gguf');
const adapterPath = join(directory, 'adapter.gguf');
const missingAdapter = join(directory, 'missing-adapter.gguf');
const corruptAdapter = join(directory, 'corrupt-adapter.gguf');

function modelConfig(name: string, lora: Array<{ path: string; scale?: number }> = []): LlamaCppModelConfig {
  return llamaCppModel.parse({ name, provider: 'llama-cpp', path: modelPath, threads: 1, context_size: 256, parallel: 1, gpu_layers: 0, lora });
}

const models = {
  base: modelConfig('base'),
  tuned: modelConfig('tuned', [{ path: adapterPath }]),
  missing: modelConfig('tuned-missing', [{ path: adapterPath }, { path: missingAdapter, scale: 0.5 }]),
  corrupt: modelConfig('tuned-corrupt', [{ path: corruptAdapter }]),
};

/** A random adapter (B non-zero, so it changes the outputs) for every target of the model. */
async function writeRandomAdapter(path: string, seed: number): Promise<void> {
  const file = openGguf(modelPath);
  const hp = readLlamaHyperparameters(file);
  file.close();
  const lora = new LoraParameters(hp, 4, 8, LORA_TARGETS, 'f32', seed);
  const random = mulberry32(seed + 1);
  for (const m of lora.matrices) for (let i = 0; i < m.b.length; i++) m.b[i] = (random() * 2 - 1) * 0.5;
  await writeLoraAdapter(path, { rank: lora.rank, alpha: lora.alpha, matrices: lora.matrices });
}

function chatRequest(model: string): ChatCompletionRequest {
  return { model, messages: [{ role: 'user', content: 'hello world' }], max_tokens: 16, temperature: 0 };
}

let provider: LlamaCppProvider;

beforeAll(async () => {
  await writeTinyGguf(modelPath, { seed: 42, logitBias: { [TINY_TOKEN_IDS.eos]: -30, [TINY_TOKEN_IDS.imEnd]: -30 } });
  await writeRandomAdapter(adapterPath, 3);
  writeFileSync(corruptAdapter, 'GGUF but not really an adapter');
  provider = createLlamaCppProvider({ models: Object.values(models) });
});
afterAll(async () => {
  await provider?.close();
  rmSync(directory, { recursive: true, force: true });
});

async function greedy(config: LlamaCppModelConfig): Promise<string> {
  const result = await provider.chat(chatRequest(config.name), { model: config, signal: new AbortController().signal, requestId: 'req_lora' });
  return result.choices[0]!.message.content as string;
}

describe('llama-cpp provider: LoRA adapters', () => {
  it('answers differently with the adapter, and the base model stays the base model', async () => {
    const before = await greedy(models.base);
    const tuned = await greedy(models.tuned);
    const after = await greedy(models.base);
    expect(before.length).toBeGreaterThan(0);
    expect(tuned).not.toBe(before);
    expect(after).toBe(before);
    expect(await greedy(models.tuned)).toBe(tuned);
  });

  it('gives a 503 naming a missing adapter file', async () => {
    const error = await greedy(models.missing).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ status: 503, type: 'server_error', code: 'model_load_failed' });
    expect((error as Error).message).toContain(missingAdapter);
    expect((error as Error).message).toContain('no such LoRA adapter file');
  });

  it('gives a 503 naming an invalid adapter file and keeps the shared model usable', async () => {
    const base = await greedy(models.base);
    const error = await greedy(models.corrupt).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ status: 503, code: 'model_load_failed' });
    expect((error as Error).message).toContain(corruptAdapter);
    expect(await greedy(models.base)).toBe(base);
    expect(await greedy(models.tuned)).not.toBe(base);
  });
});

describe('LoadedModels: one model file, several adapters', () => {
  it('shares the LlamaModel between configurations and frees it with the last one', async () => {
    const loaded = new LoadedModels({ gpu: false });
    try {
      const signal = new AbortController().signal;
      const base = await loaded.acquire(models.base, signal);
      const tuned = await loaded.acquire(models.tuned, signal);
      expect(tuned.loaded.model).toBe(base.loaded.model);
      expect(tuned.loaded.context).not.toBe(base.loaded.context);
      await base.release();
      await tuned.release();
    } finally {
      await loaded.close();
    }
  });
});
