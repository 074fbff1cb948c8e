/**
 * The built-in CPU LoRA trainer's public API: open a llama GGUF model, train LoRA adapters on
 * token sequences with AdamW, evaluate, checkpoint/resume, and write a GGUF LoRA adapter that
 * llama.cpp (node-llama-cpp's `createContext({ lora })`) loads.
 *
 * Examples: `tokens` is the whole sequence (prompt and answer, BOS included if the model
 * wants one); `lossMask[i] = 1` marks tokens[i] as a token to learn (an assistant token).
 * Position p of the input predicts tokens[p + 1], so lossMask[0] is never used. A step's loss
 * is the mean cross-entropy (nats) over the counted tokens of the whole batch.
 *
 * Everything here is synchronous CPU work on the calling thread; `trainStepAsync` yields to the
 * event loop between examples, and trainer-worker-client.ts runs a trainer in a worker thread.
 */
import { openGguf } from '../../gguf/reader.js';
import { AdamW } from './adamw.js';
import { loadCheckpointFile, saveCheckpointFile, type CheckpointData } from './lora-checkpoint.js';
import { writeLoraAdapter } from './lora-adapter-writer.js';
import { LlamaLoraModel } from './llama-lora-model.js';
import { assertTrainingFits, loadLlamaWeights, readLlamaHyperparameters, type LlamaHyperparameters } from './llama-weights.js';
import { isLoraTarget, LoraParameters } from './lora-parameters.js';
import { LORA_TARGETS, type LoraTarget } from './lora-types.js';
import { selectKernels, type KernelChoice } from './matmul-kernels.js';
import { ParallelKernels } from './parallel-kernels.js';
import { floatAllocator } from './float-allocator.js';

export interface TrainingExample {
  tokens: number[];
  /** Same length as tokens; 1 where the token is one to learn (an assistant token), else 0. */
  lossMask: number[];
}

export interface LoraTrainerOptions {
  modelPath: string;
  /** Default 8. */
  rank?: number;
  /** Default 16 (the adapter's scale is alpha / rank). */
  alpha?: number;
  /** Matrices to adapt in every block; default all of LORA_TARGETS. */
  targets?: string[];
  learningRate: number;
  /** Examples per optimizer step that the caller intends to pass (trainStep takes any non-empty batch). */
  batchSize: number;
  /** Seeds the LoRA A initialisation; default 0. */
  seed?: number;
  /**
   * Threads for the matrix products (default 1): with more, helper threads share the work (the
   * optimised kernels only; results are bit-identical). Note the caller's thread is one of them.
   */
  threads?: number;
  /** Default 'optimised'; 'reference' runs the plain kernels (same results, slower). */
  kernels?: KernelChoice;
  /** AdamW decoupled weight decay; default 0. */
  weightDecay?: number;
  /** Longest sequence to plan memory for; default the model's context length (capped at 2048). */
  maxSequenceLength?: number;
  /** Refuse models whose training needs more bytes than this; default 75% of the machine's memory. */
  memoryLimitBytes?: number;
}

export interface StepResult {
  /** Mean cross-entropy (nats) over the counted tokens; 0 when there were none. */
  loss: number;
  /** Counted (masked-in) target tokens. */
  tokens: number;
  /** Share of the counted tokens the model ranked first (greedy), before the update; 0 when none. */
  accuracy: number;
}

export class LoraTrainer {
  private closed = false;

  private constructor(
    readonly options: Readonly<LoraTrainerOptions>,
    readonly hyperparameters: LlamaHyperparameters,
    private readonly model: LlamaLoraModel,
    private readonly lora: LoraParameters,
    private readonly optimizer: AdamW,
    private readonly parallel: ParallelKernels | undefined,
  ) {}

  static async open(options: LoraTrainerOptions): Promise<LoraTrainer> {
    const rank = options.rank ?? 8;
    const alpha = options.alpha ?? 16;
    if (!(alpha > 0)) throw new Error('alpha must be positive');
    if (!(options.learningRate > 0)) throw new Error('learningRate must be positive');
    if (!(Number.isInteger(options.batchSize) && options.batchSize >= 1)) throw new Error('batchSize must be a positive integer');
    const targetNames = options.targets ?? [...LORA_TARGETS];
    const targets: LoraTarget[] = [];
    for (const name of targetNames) {
      if (!isLoraTarget(name)) throw new Error(`unknown LoRA target ${JSON.stringify(name)}; known: ${LORA_TARGETS.join(', ')}`);
      if (!targets.includes(name)) targets.push(name);
    }
    if (targets.length === 0) throw new Error('at least one LoRA target is needed');
    const file = openGguf(options.modelPath);
    try {
      const hp = readLlamaHyperparameters(file);
      assertTrainingFits(
        hp,
        { rank, targetsPerBlock: targets.length, maxSequenceLength: options.maxSequenceLength ?? Math.min(hp.contextLength, 2048) },
        options.memoryLimitBytes,
      );
      const threads = options.threads ?? 1;
      if (!(Number.isInteger(threads) && threads >= 1)) throw new Error('threads must be a positive integer');
      const choice = options.kernels ?? 'optimised';
      const parallel = threads > 1 && choice === 'optimised' ? await ParallelKernels.start({ threads }) : undefined;
      try {
        const allocate = floatAllocator('f32', parallel !== undefined);
        const weights = loadLlamaWeights(file, 'f32', parallel ? allocate : undefined);
        const lora = new LoraParameters(hp, rank, alpha, targets, 'f32', options.seed ?? 0, allocate);
        const model = new LlamaLoraModel(weights, lora, parallel ?? selectKernels(choice), allocate);
        const optimizer = new AdamW(lora.parameterList(), { learningRate: options.learningRate, weightDecay: options.weightDecay ?? 0 });
        return new LoraTrainer({ ...options, rank, alpha, targets }, hp, model, lora, optimizer, parallel);
      } catch (error) {
        await parallel?.close();
        throw error;
      }
    } finally {
      file.close();
    }
  }

  /** Optimizer steps taken so far (restored by loadCheckpoint). */
  get step(): number {
    return this.optimizer.stepCount;
  }

  get learningRate(): number {
    return this.optimizer.learningRate;
  }

  /** Changes the learning rate from the next step on (for schedules). */
  set learningRate(value: number) {
    this.optimizer.learningRate = value;
  }

  private checkOpen(): void {
    if (this.closed) throw new Error('the trainer is closed');
  }

  private countTargets(batch: readonly TrainingExample[]): number {
    let count = 0;
    for (const example of batch) {
      if (example.tokens.length !== example.lossMask.length) throw new Error('an example has tokens and lossMask of different lengths');
      for (let i = 1; i < example.lossMask.length; i++) if (example.lossMask[i] === 1) count++;
    }
    return count;
  }

  /** One AdamW step on the batch; the loss is the batch's before the update. No step when no token counts. */
  trainStep(batch: readonly TrainingExample[]): StepResult {
    this.checkOpen();
    const total = this.startStep(batch);
    if (total === 0) return { loss: 0, tokens: 0, accuracy: 0 };
    const sums = { lossSum: 0, correct: 0 };
    for (const example of batch) this.accumulate(example, total, true, sums);
    this.optimizer.update();
    return stepResult(sums, total);
  }

  /** trainStep, yielding to the event loop after each example. Same result as trainStep. */
  async trainStepAsync(batch: readonly TrainingExample[]): Promise<StepResult> {
    this.checkOpen();
    const total = this.startStep(batch);
    if (total === 0) return { loss: 0, tokens: 0, accuracy: 0 };
    const sums = { lossSum: 0, correct: 0 };
    for (const example of batch) {
      this.accumulate(example, total, true, sums);
      await new Promise<void>((resolve) => setImmediate(resolve));
      this.checkOpen();
    }
    this.optimizer.update();
    return stepResult(sums, total);
  }

  /** Adds one example's loss (and, with gradients, its gradients) to the step's sums. */
  private accumulate(example: TrainingExample, total: number, withGradients: boolean, sums: { lossSum: number; correct: number }): void {
    const result = this.model.lossAndGradients(example.tokens, example.lossMask, total, withGradients);
    sums.lossSum += result.lossSum;
    sums.correct += result.correct;
  }

  private startStep(batch: readonly TrainingExample[]): number {
    if (batch.length === 0) throw new Error('trainStep needs at least one example');
    const total = this.countTargets(batch);
    this.lora.zeroGradients();
    return total;
  }

  /** Mean cross-entropy over the examples' counted tokens, without training. */
  evaluate(examples: readonly TrainingExample[]): StepResult {
    this.checkOpen();
    const total = this.countTargets(examples);
    if (total === 0) return { loss: 0, tokens: 0, accuracy: 0 };
    const sums = { lossSum: 0, correct: 0 };
    for (const example of examples) this.accumulate(example, total, false, sums);
    return stepResult(sums, total);
  }

  /** Logits with the current adapter: row p (of vocabulary size) predicts the token after tokens[p]. */
  logits(tokens: readonly number[]): Float32Array {
    this.checkOpen();
    return this.model.logits(tokens);
  }

  private checkpointHeader(): CheckpointData['header'] {
    const { rank, alpha } = this.lora;
    return {
      rank,
      alpha,
      targets: [...this.lora.targets],
      step: this.optimizer.stepCount,
      learningRate: this.optimizer.learningRate,
      model: { ...this.hyperparameters },
      tensors: this.lora.parameterList().map((p) => ({ name: p.name, length: p.value.length })),
    };
  }

  /** Saves the adapter, the optimizer state and the step (atomically). */
  async saveCheckpoint(path: string): Promise<void> {
    this.checkOpen();
    const state = this.optimizer.exportState();
    const params = this.lora.parameterList();
    await saveCheckpointFile(path, {
      header: this.checkpointHeader(),
      arrays: params.map((p, k) => [Float32Array.from(p.value), state.m[k]!, state.v[k]!]),
    });
  }

  /** Restores a checkpoint of this model and LoRA configuration, so training resumes exactly. */
  async loadCheckpoint(path: string): Promise<void> {
    this.checkOpen();
    const { header, arrays } = await loadCheckpointFile(path);
    const mine = this.checkpointHeader();
    if (header.rank !== mine.rank || header.alpha !== mine.alpha || header.targets.join(',') !== mine.targets.join(',')) {
      throw new Error('the checkpoint has a different LoRA configuration (rank, alpha or targets)');
    }
    if (JSON.stringify(header.model) !== JSON.stringify(mine.model)) throw new Error('the checkpoint is of a different model');
    const params = this.lora.parameterList();
    if (header.tensors.length !== params.length || header.tensors.some((t, k) => t.name !== params[k]!.name || t.length !== params[k]!.value.length)) {
      throw new Error('the checkpoint tensors do not match the trainer');
    }
    params.forEach((p, k) => p.value.set(arrays[k]![0]));
    this.optimizer.importState({ step: header.step, m: arrays.map((a) => a[1]), v: arrays.map((a) => a[2]) });
    this.optimizer.learningRate = header.learningRate;
  }

  /** Writes the current adapter as a GGUF LoRA adapter for llama.cpp. */
  async writeAdapter(path: string, name?: string): Promise<void> {
    this.checkOpen();
    await writeLoraAdapter(path, { rank: this.lora.rank, alpha: this.lora.alpha, matrices: this.lora.matrices, ...(name === undefined ? {} : { name }) });
  }

  /** Stops helper threads, if any; further calls throw. */
  async close(): Promise<void> {
    this.closed = true;
    await this.parallel?.close();
  }
}

function stepResult(sums: { lossSum: number; correct: number }, total: number): StepResult {
  return { loss: sums.lossSum / total, tokens: total, accuracy: sums.correct / total };
}
