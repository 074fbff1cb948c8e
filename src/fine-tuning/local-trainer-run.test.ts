/**
 * The `local` trainer end to end on a tiny generated model and a chat JSONL of question →
 * code pairs: metrics with falling loss, a checkpoint per epoch, the final adapter, which the
 * llama-cpp provider serves (`lora`) with the trained answers while the base model gives none;
 * a paused job resumed from its saved state ends with the very same adapter; cancel and abort
 * stop at once; unsupported models and too-long examples are refused. The trainer's worker runs
 * the compiled dist/ code (`npm run build`), so this suite needs dist/.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fineTuningTrainerConfig, llamaCppModel, mockModel, type LlamaCppModelConfig } from '../config/schema.js';
import { writeTinyGguf } from '../../test/support/tiny-gguf.js';
import { createLlamaCppProvider } from '../providers/llama-cpp/llama-cpp-provider.js';
import { createLocalTrainer } from './local-trainer-run.js';
import { TrainerError, type TrainerProgress, type TrainerResult, type TrainerRun, type TrainingMetrics } from './trainer-spec.js';

const workerUrl = new URL('../../dist/fine-tuning/local-trainer/trainer-worker.js', import.meta.url);
const directory = mkdtempSync(join(tmpdir(), 'chatgate-local-trainer-run-'));
const modelPath = join(directory, 'tiny.gguf');
const trainingPath = join(directory, 'training.jsonl');
const validationPath = join(directory, 'validation.jsonl');

const WORDS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet', 'kilo', 'lima'];
const PAIRS = WORDS.map((word, i) => ({ question: `What is the code for ${word}?`, answer: `${word}-${(i * 7) % 10}` }));
const EPOCHS = 15;
const BATCH_SIZE = 2;
const STEPS_PER_EPOCH = Math.ceil(PAIRS.length / BATCH_SIZE);

const line = (pair: { question: string; answer: string }) =>
  JSON.stringify({ messages: [{ role: 'user', content: pair.question }, { role: 'assistant', content: pair.answer }] });

const baseModel: LlamaCppModelConfig = llamaCppModel.parse({
  name: 'tiny', provider: 'llama-cpp', path: modelPath, threads: 1, context_size: 256, parallel: 1, gpu_layers: 0,
});
const trainerConfig = fineTuningTrainerConfig.parse({ trainer: 'local', learning_rate: 5e-3, rank: 8, alpha: 16, threads: 1 });
const trainer = createLocalTrainer({ workerUrl, metricsIntervalMs: 0, pollMs: 20 });

interface Recorded {
  progress: TrainerProgress;
  metrics: TrainingMetrics[];
  checkpoints: Array<{ step: number; epoch: number; adapterPath: string | null; metrics: Record<string, number> }>;
  states: Array<Record<string, unknown>>;
  messages: string[];
}

function recorder(stop: (metrics: TrainingMetrics[]) => 'cancel' | 'pause' | null = () => null): Recorded {
  const recorded: Recorded = {
    metrics: [],
    checkpoints: [],
    states: [],
    messages: [],
    progress: {
      metrics: async (metrics) => void recorded.metrics.push(metrics),
      message: async (level, text) => void recorded.messages.push(`${level}: ${text}`),
      checkpoint: async (checkpoint) => void recorded.checkpoints.push(checkpoint),
      saveState: async (state) => void recorded.states.push(state),
      stopRequested: () => stop(recorded.metrics),
    },
  };
  return recorded;
}

function trainerRun(workDirectory: string, extra: Partial<TrainerRun> = {}): TrainerRun {
  mkdirSync(workDirectory, { recursive: true });
  return {
    jobId: 'ftjob-test',
    baseModel,
    trainer: trainerConfig,
    trainingPath,
    validationPath,
    workDirectory,
    hyperparameters: { n_epochs: EPOCHS, batch_size: BATCH_SIZE, learning_rate_multiplier: 1 },
    seed: 7,
    suffix: null,
    state: null,
    signal: new AbortController().signal,
    ...extra,
  };
}

beforeAll(async () => {
  await writeTinyGguf(modelPath, { seed: 42, embeddingLength: 96, blockCount: 2, feedForwardLength: 192, headCount: 4, headCountKv: 4 });
  writeFileSync(trainingPath, PAIRS.map(line).join('\n') + '\n');
  writeFileSync(validationPath, PAIRS.slice(0, 3).map(line).join('\n') + '\n');
});
afterAll(() => rmSync(directory, { recursive: true, force: true }));

describe.skipIf(!existsSync(workerUrl))('local trainer run', () => {
  const fullDirectory = join(directory, 'full');
  let full: TrainerResult;
  let fullRecord: Recorded;

  it('trains: falling loss, a checkpoint per epoch, an adapter that answers the trained questions', async () => {
    fullRecord = recorder();
    const started = Date.now();
    full = await trainer.run(trainerRun(fullDirectory), fullRecord.progress);
    const elapsed = Date.now() - started;
    expect(full.kind).toBe('adapter');
    if (full.kind !== 'adapter') return;
    expect(full.adapterPath).toBe(join(fullDirectory, 'adapter.gguf'));
    expect(existsSync(full.adapterPath)).toBe(true);

    const { metrics, checkpoints } = fullRecord;
    expect(metrics.map((m) => m.step)).toEqual(Array.from({ length: EPOCHS * STEPS_PER_EPOCH }, (_, i) => i + 1));
    expect(metrics.every((m) => m.total_steps === EPOCHS * STEPS_PER_EPOCH)).toBe(true);
    const epochEnds = metrics.filter((m) => m.step % STEPS_PER_EPOCH === 0);
    expect(epochEnds.every((m) => typeof m.valid_loss === 'number')).toBe(true);
    expect(metrics.filter((m) => m.step % STEPS_PER_EPOCH !== 0).every((m) => m.valid_loss === undefined)).toBe(true);
    const firstLoss = metrics[0]!.train_loss;
    const lastLoss = metrics.at(-1)!.train_loss;
    expect(lastLoss).toBeLessThan(firstLoss * 0.2);
    expect(epochEnds.at(-1)!.valid_loss!).toBeLessThan(epochEnds[0]!.valid_loss! * 0.5);

    expect(checkpoints.map((c) => [c.epoch, c.step])).toEqual(Array.from({ length: EPOCHS }, (_, i) => [i + 1, (i + 1) * STEPS_PER_EPOCH]));
    for (const checkpoint of checkpoints) {
      expect(checkpoint.adapterPath).toBe(join(fullDirectory, 'checkpoints', `step-${checkpoint.step}.gguf`));
      expect(existsSync(checkpoint.adapterPath!)).toBe(true);
      expect(checkpoint.metrics).toMatchObject({ train_loss: expect.any(Number), valid_loss: expect.any(Number) });
    }
    // The last checkpoint is the final adapter.
    expect(readFileSync(checkpoints.at(-1)!.adapterPath!).equals(readFileSync(full.adapterPath))).toBe(true);
    const tokens = full.trainedTokens / EPOCHS;
    expect(Number.isInteger(tokens) && tokens > PAIRS.length * 10).toBe(true);
    expect(fullRecord.states.at(-1)).toMatchObject({ done: true, step: EPOCHS * STEPS_PER_EPOCH });
    expect(existsSync(join(fullDirectory, 'resume'))).toBe(false);

    // Served by the llama-cpp provider: base model vs base model + adapter, greedy.
    const tuned = llamaCppModel.parse({ ...baseModel, name: 'tiny-tuned', lora: [{ path: full.adapterPath }] });
    const provider = createLlamaCppProvider({ models: [baseModel, tuned] });
    try {
      const answer = async (model: LlamaCppModelConfig, question: string) => {
        const result = await provider.chat(
          { model: model.name, messages: [{ role: 'user', content: question }], max_tokens: 12, temperature: 0 },
          { model, signal: new AbortController().signal, requestId: 'req_ft' },
        );
        return (result.choices[0]!.message.content as string).trim();
      };
      let baseMatches = 0;
      let tunedMatches = 0;
      for (const pair of PAIRS) {
        if ((await answer(baseModel, pair.question)) === pair.answer) baseMatches++;
        if ((await answer(tuned, pair.question)) === pair.answer) tunedMatches++;
      }
      const lossLine = `train loss ${firstLoss.toFixed(3)} → ${lastLoss.toFixed(4)}, valid loss ${epochEnds[0]!.valid_loss!.toFixed(3)} → ${epochEnds.at(-1)!.valid_loss!.toFixed(4)}`;
      console.log(`[local trainer] ${elapsed} ms, ${lossLine}; greedy exact answers: base ${baseMatches}/${PAIRS.length}, fine-tuned ${tunedMatches}/${PAIRS.length}`);
      expect(baseMatches).toBe(0);
      expect(tunedMatches).toBeGreaterThanOrEqual(Math.ceil(PAIRS.length * 0.75));
    } finally {
      await provider.close();
    }
  });

  it('resumes a paused job to the same adapter as an uninterrupted run', async () => {
    expect(full?.kind).toBe('adapter');
    if (full?.kind !== 'adapter') return;
    const workDirectory = join(directory, 'resumed');
    const pauseAt = STEPS_PER_EPOCH + 2; // mid-way through the second epoch
    const first = recorder((metrics) => (metrics.length >= pauseAt ? 'pause' : null));
    expect(await trainer.run(trainerRun(workDirectory), first.progress)).toEqual({ kind: 'stopped', reason: 'pause' });
    expect(first.metrics.map((m) => m.step)).toEqual(Array.from({ length: pauseAt }, (_, i) => i + 1));
    const state = first.states.at(-1)!;
    expect(state).toMatchObject({ step: pauseAt, epoch: 1, position: 2 });
    expect(existsSync(join(workDirectory, state.checkpoint as string))).toBe(true);

    const second = recorder();
    const result = await trainer.run(trainerRun(workDirectory, { state }), second.progress);
    const resumed = { ...full, adapterPath: join(workDirectory, 'adapter.gguf') };
    expect(result).toEqual(resumed);
    expect(second.metrics[0]!.step).toBe(pauseAt + 1);
    expect(second.metrics.map((m) => m.train_loss)).toEqual(fullRecord.metrics.slice(pauseAt).map((m) => m.train_loss));
    expect(readFileSync(join(workDirectory, 'adapter.gguf')).equals(readFileSync(full.adapterPath))).toBe(true);
    expect([...first.checkpoints, ...second.checkpoints].map((c) => c.step)).toEqual(fullRecord.checkpoints.map((c) => c.step));

    // Started again once done: the adapter as is, without training.
    const third = recorder();
    expect(await trainer.run(trainerRun(workDirectory, { state: second.states.at(-1)! }), third.progress)).toEqual(resumed);
    expect(third.metrics).toEqual([]);
  });

  it('returns at once on cancel, and throws the reason when the signal aborts', async () => {
    let cancelledAt = 0;
    const cancelled = recorder((metrics) => {
      if (metrics.length < 2) return null;
      cancelledAt ||= Date.now();
      return 'cancel';
    });
    const workDirectory = join(directory, 'cancelled');
    expect(await trainer.run(trainerRun(workDirectory), cancelled.progress)).toEqual({ kind: 'stopped', reason: 'cancel' });
    expect(Date.now() - cancelledAt).toBeLessThan(1000);
    expect(cancelled.metrics).toHaveLength(2);
    expect(existsSync(join(workDirectory, 'adapter.gguf'))).toBe(false);

    const controller = new AbortController();
    const aborted = recorder((metrics) => {
      if (metrics.length >= 1) controller.abort(new Error('server stopping'));
      return null;
    });
    await expect(trainer.run(trainerRun(join(directory, 'aborted'), { signal: controller.signal }), aborted.progress)).rejects.toThrow('server stopping');
    expect(aborted.metrics).toHaveLength(1);
  });

  it('refuses models it cannot train and examples longer than max_sequence_length', async () => {
    const mock = mockModel.parse({ name: 'mock', provider: 'mock' });
    const refused = await trainer.run(trainerRun(join(directory, 'mock'), { baseModel: mock }), recorder().progress).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(TrainerError);
    expect(refused).toMatchObject({ code: 'unsupported_model' });

    const short = fineTuningTrainerConfig.parse({ trainer: 'local', max_sequence_length: 12, threads: 1 });
    const tooLong = await trainer.run(trainerRun(join(directory, 'short'), { trainer: short }), recorder().progress).catch((error: unknown) => error);
    expect(tooLong).toBeInstanceOf(TrainerError);
    expect(tooLong).toMatchObject({ code: 'invalid_training_file' });
    expect((tooLong as Error).message).toMatch(/line 1\b/);
  });
});
