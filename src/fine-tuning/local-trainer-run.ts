/**
 * The `local` fine-tuning trainer (trainer-spec.ts): trains a LoRA adapter for a llama-cpp
 * base model on the CPU with the built-in trainer (local-trainer/), in a worker thread so the
 * server stays responsive, and leaves `<workDirectory>/adapter.gguf` for llama-cpp to serve.
 *
 * - Data: the training (and validation) file tokenized with the base model's tokenizer and
 *   chat template (local-training-examples.ts); an example the trainer cannot take fails the job.
 * - Schedule: n_epochs epochs; each visits the examples in an order shuffled from (seed, epoch)
 *   in batches of batch_size, one optimizer step per batch (the last batch of an epoch may be
 *   smaller). Constant learning rate: the config's learning_rate × learning_rate_multiplier.
 *   The LoRA initialisation is seeded by the job's seed, so a job is deterministic.
 * - Metrics: a step's `metrics` event is sent when at least `metricsIntervalMs` (1 s) passed
 *   since the last one sent, for the first step of a (re)start, and for each epoch's last step,
 *   which also carries valid_loss (the whole validation file). Slow steps: every step; fast
 *   ones: about one event a second. train_mean_token_accuracy is not reported (the trainer
 *   does not compute it).
 * - Checkpoints: at each epoch's end the adapter as `checkpoints/step-<N>.gguf` (a `checkpoint`
 *   event); a resumable trainer checkpoint (local-trainer-state.ts) at each epoch's end, every
 *   `checkpoint_seconds` in between and on pause, recorded with `saveState`. A restarted run
 *   loads it and continues from that batch of that epoch, so it ends with the same adapter as
 *   an uninterrupted run (steps after the last saved state are redone; their metrics events
 *   are sent again).
 * - Stopping: 'cancel' and an aborted `signal` are noticed also during a step (polled); the
 *   run returns (cancel) or throws the signal's reason at once, the worker ending after its
 *   current step. 'pause' is taken between steps: checkpoint, state, return.
 * - Result: trainedTokens = tokens of the training sequences × n_epochs (OpenAI counts every
 *   token of the examples, per epoch).
 */
import { mkdir, rename, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import type { FineTuningTrainerConfig, LlamaCppModelConfig } from '../config/schema.js';
import { ChatTokenizer } from './dataset/chat-tokenizer.js';
import type { StepResult, TrainingExample } from './local-trainer/lora-trainer.js';
import { LoraTrainerWorker } from './local-trainer/trainer-worker-client.js';
import { epochOrder, tokenizeFile, type TokenizedFile } from './local-training-examples.js';
import { parseLocalTrainerState, resumeCheckpointName, resumeProblem, type LocalTrainerState } from './local-trainer-state.js';
import { TrainerError, type Trainer, type TrainerProgress, type TrainerResult, type TrainerRun, type TrainingMetrics } from './trainer-spec.js';

type LocalConfig = Extract<FineTuningTrainerConfig, { trainer: 'local' }>;

export interface LocalTrainerOptions {
  /** The compiled trainer worker (default: beside trainer-worker-client.js, as in dist/). */
  workerUrl?: URL;
  /** Least time between two metrics events of a run, in ms (default 1000; 0: every step). */
  metricsIntervalMs?: number;
  /** How often 'cancel' and the signal are looked at during a step, in ms (default 200). */
  pollMs?: number;
}

/** Thrown inside a run when it must stop during a step. */
class Interrupted extends Error {
  constructor(readonly why: 'cancel' | 'abort') {
    super(why);
  }
}

export function createLocalTrainer(options: LocalTrainerOptions = {}): Trainer {
  return { run: (run, progress) => runLocalTrainer(run, progress, options) };
}

async function runLocalTrainer(run: TrainerRun, progress: TrainerProgress, options: LocalTrainerOptions): Promise<TrainerResult> {
  const { base, config } = checkRun(run);
  const { n_epochs: epochs, batch_size: batchSize } = run.hyperparameters;
  const adapterPath = join(run.workDirectory, 'adapter.gguf');
  const saved = parseLocalTrainerState(run.state);
  if (saved?.done && existsSync(adapterPath)) return { kind: 'adapter', adapterPath, trainedTokens: saved.trainedTokens };
  throwIfAborted(run.signal);

  const { training, validation, longest } = await tokenize(run, base, config);
  throwIfAborted(run.signal);
  const count = training.examples.length;
  const stepsPerEpoch = Math.ceil(count / batchSize);
  const totalSteps = stepsPerEpoch * epochs;
  const trainedTokens = training.totalTokens * epochs;
  const shape = { examples: count, batchSize, epochs, trainedTokens };

  let start: LocalTrainerState | null = null;
  if (saved) {
    const problem = resumeProblem(saved, { workDirectory: run.workDirectory, examples: count, batchSize, epochs });
    if (problem === null) start = saved;
    else await progress.message('warn', `Cannot resume from the saved state (${problem}); training from the start.`);
  }

  let worker: LoraTrainerWorker;
  try {
    worker = await LoraTrainerWorker.open(
      {
        modelPath: resolve(base.path),
        rank: config.rank,
        alpha: config.alpha,
        ...(config.targets ? { targets: config.targets } : {}),
        learningRate: config.learning_rate * run.hyperparameters.learning_rate_multiplier,
        batchSize,
        seed: run.seed,
        threads: config.threads ?? availableParallelism(),
        maxSequenceLength: longest,
      },
      options.workerUrl ? { workerUrl: options.workerUrl } : {},
    );
  } catch (error) {
    throw new TrainerError('unsupported_model', `The local trainer cannot train ${base.name}: ${(error as Error).message}.`);
  }
  let interrupted = false;
  try {
    const guard = <T>(work: Promise<T>) => interruptible(work, run, progress, options.pollMs ?? 200);
    if (start) await guard(worker.loadCheckpoint(join(run.workDirectory, start.checkpoint)));
    await mkdir(join(run.workDirectory, 'checkpoints'), { recursive: true });
    await mkdir(join(run.workDirectory, 'resume'), { recursive: true });

    let step = start?.step ?? 0;
    let savedCheckpoint = start?.checkpoint ?? null;
    let savedStep = start ? start.step : -1;
    let lastSave = Date.now();
    let lastMetrics = -Infinity;
    const metricsInterval = options.metricsIntervalMs ?? 1000;

    /** A resumable checkpoint of now, recorded as the state to resume from; the previous one removed. */
    const saveResume = async (epoch: number, position: number, beforeState?: () => Promise<void>) => {
      const name = resumeCheckpointName(step);
      if (savedStep !== step) await guard(worker.saveCheckpoint(join(run.workDirectory, name)));
      await beforeState?.();
      await progress.saveState({ version: 1, step, epoch, position, checkpoint: name, ...shape } satisfies LocalTrainerState);
      if (savedCheckpoint !== null && savedCheckpoint !== name) await rm(join(run.workDirectory, savedCheckpoint), { force: true });
      savedCheckpoint = name;
      savedStep = step;
      lastSave = Date.now();
    };

    for (let epoch = start?.epoch ?? 0; epoch < epochs; epoch++) {
      const order = epochOrder(count, run.seed, epoch);
      for (let position = epoch === start?.epoch ? start.position : 0; position < stepsPerEpoch; ) {
        throwIfAborted(run.signal);
        const stop = progress.stopRequested();
        if (stop === 'cancel') return { kind: 'stopped', reason: 'cancel' };
        if (stop === 'pause') {
          await saveResume(epoch, position);
          return { kind: 'stopped', reason: 'pause' };
        }
        const batch: TrainingExample[] = order.slice(position * batchSize, (position + 1) * batchSize).map((i) => training.examples[i]!);
        const result: StepResult = await guard(worker.trainStep(batch));
        step++;
        position++;
        const epochEnd = position === stepsPerEpoch;
        const metrics: TrainingMetrics = { step, total_steps: totalSteps, epoch: epoch + 1, train_loss: result.loss, train_mean_token_accuracy: result.accuracy };
        if (epochEnd && validation) {
          const evaluated = await guard(worker.evaluate(validation.examples));
          metrics.valid_loss = evaluated.loss;
          metrics.valid_mean_token_accuracy = evaluated.accuracy;
        }
        const now = Date.now();
        if (epochEnd || now - lastMetrics >= metricsInterval) {
          await progress.metrics(metrics);
          lastMetrics = now;
        }
        if (epochEnd) {
          const checkpointAdapter = join(run.workDirectory, 'checkpoints', `step-${step}.gguf`);
          await writeAdapterAtomically(worker, checkpointAdapter, run.jobId, guard);
          const checkpointMetrics: Record<string, number> = { train_loss: result.loss, train_mean_token_accuracy: result.accuracy };
          if (metrics.valid_loss !== undefined) {
            Object.assign(checkpointMetrics, {
              valid_loss: metrics.valid_loss,
              valid_mean_token_accuracy: metrics.valid_mean_token_accuracy,
              full_valid_loss: metrics.valid_loss,
              full_valid_mean_token_accuracy: metrics.valid_mean_token_accuracy,
            });
          }
          await saveResume(epoch + 1, 0, () => progress.checkpoint({ step, epoch: epoch + 1, adapterPath: checkpointAdapter, metrics: checkpointMetrics }));
        } else if (now - lastSave >= config.checkpoint_seconds * 1000) {
          await saveResume(epoch, position);
        }
      }
    }

    throwIfAborted(run.signal);
    await writeAdapterAtomically(worker, adapterPath, run.jobId, guard);
    await progress.saveState({ version: 1, step, epoch: epochs, position: 0, checkpoint: savedCheckpoint ?? '', ...shape, done: true } satisfies LocalTrainerState);
    await rm(join(run.workDirectory, 'resume'), { recursive: true, force: true });
    return { kind: 'adapter', adapterPath, trainedTokens };
  } catch (error) {
    if (!(error instanceof Interrupted)) throw error;
    interrupted = true;
    if (error.why === 'cancel') return { kind: 'stopped', reason: 'cancel' };
    throw run.signal.reason;
  } finally {
    // After an interruption the worker is still busy with a step: let it end in the background.
    const closing = worker.close().catch(() => {});
    if (!interrupted) await closing;
  }
}

function checkRun(run: TrainerRun): { base: LlamaCppModelConfig; config: LocalConfig } {
  const base = run.baseModel;
  const config = run.trainer;
  if (config.trainer !== 'local') throw new TrainerError('unsupported_model', `The local trainer cannot run a '${config.trainer}' fine-tuning configuration.`);
  if (base.provider !== 'llama-cpp') {
    throw new TrainerError('unsupported_model', `The local trainer trains llama-cpp models only; ${base.name} is ${base.provider}.`);
  }
  if (base.lora.length > 0) {
    throw new TrainerError('unsupported_model', `The local trainer cannot train ${base.name}: it is served with LoRA adapters, which training would not see.`);
  }
  return { base, config };
}

async function tokenize(
  run: TrainerRun,
  base: LlamaCppModelConfig,
  config: LocalConfig,
): Promise<{ training: TokenizedFile; validation: TokenizedFile | null; longest: number }> {
  const tokenizer = await ChatTokenizer.load({ modelPath: resolve(base.path), ...(base.chat_template ? { chatTemplate: base.chat_template } : {}) });
  try {
    const context = tokenizer.trainContextSize ?? config.max_sequence_length ?? 2048;
    const maxTokens = Math.min(config.max_sequence_length ?? context, context);
    const training = await tokenizeFile(tokenizer, run.trainingPath, { maxTokens, errorCode: 'invalid_training_file', label: 'training file' });
    const validation = run.validationPath
      ? await tokenizeFile(tokenizer, run.validationPath, { maxTokens, errorCode: 'invalid_validation_file', label: 'validation file' })
      : null;
    return { training, validation, longest: Math.max(training.longest, validation?.longest ?? 0) };
  } finally {
    await tokenizer.dispose();
  }
}

/** Writes the adapter beside its place, then renames it there, so a reader never sees half a file. */
async function writeAdapterAtomically(
  worker: LoraTrainerWorker,
  path: string,
  name: string,
  guard: <T>(work: Promise<T>) => Promise<T>,
): Promise<void> {
  const temporary = `${path}.tmp-${process.pid}`;
  await guard(worker.writeAdapter(temporary, name));
  await rename(temporary, path);
}

/** Throws the signal's reason if it is aborted (between steps: the worker is idle). */
function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw signal.reason;
}

/** The work's outcome, unless the signal aborts or 'cancel' is requested first (Interrupted). */
function interruptible<T>(work: Promise<T>, run: TrainerRun, progress: TrainerProgress, pollMs: number): Promise<T> {
  return new Promise<T>((resolvePromise, reject) => {
    const check = () => {
      if (run.signal.aborted) settle(() => reject(new Interrupted('abort')));
      else if (progress.stopRequested() === 'cancel') settle(() => reject(new Interrupted('cancel')));
    };
    const timer = setInterval(check, pollMs);
    run.signal.addEventListener('abort', check);
    const settle = (action: () => void) => {
      clearInterval(timer);
      run.signal.removeEventListener('abort', check);
      action();
    };
    work.then(
      (value) => settle(() => resolvePromise(value)),
      (error: unknown) => settle(() => reject(error)),
    );
    check();
  });
}
