/**
 * What a fine-tuning trainer is given and what it reports (docs/fine-tuning.md). The job
 * runner (fine-tuning-job.ts) validates the files, resolves the hyperparameters, copies the
 * files into the job's directory and calls the trainer chosen by the base model's
 * `fine_tuning.trainer`: `local` (local-trainer-run.ts), `upstream` (upstream-trainer.ts) or
 * `command` (command-trainer.ts). A trainer must be resumable: it may be started again for
 * the same job after a crash or a pause, with the state it saved (`progress.saveState`) and
 * the files it left in `workDirectory`.
 */
import type { FineTuningTrainerConfig, ModelConfig } from '../config/schema.js';

export interface FineTuneHyperparameters {
  n_epochs: number;
  batch_size: number;
  learning_rate_multiplier: number;
}

export interface TrainerRun {
  /** `ftjob-…`. */
  jobId: string;
  /** The base model's configuration (its `fine_tuning` is `trainer`). */
  baseModel: ModelConfig;
  trainer: FineTuningTrainerConfig;
  /** The training data (chat-format JSONL, already validated), a local file. */
  trainingPath: string;
  validationPath: string | null;
  /** The job's own directory: kept across restarts, removed with the job. */
  workDirectory: string;
  hyperparameters: FineTuneHyperparameters;
  seed: number;
  suffix: string | null;
  /** What the trainer saved last time (null on the first start). */
  state: Record<string, unknown> | null;
  /** Aborted when the process stops (the job is resumed later, here or elsewhere): return or throw promptly. */
  signal: AbortSignal;
}

export interface TrainingMetrics {
  step: number;
  /** Steps of the whole job, when known. */
  total_steps?: number;
  epoch?: number;
  train_loss: number;
  /** Share of the trained tokens predicted right (greedy), when known. */
  train_mean_token_accuracy?: number;
  valid_loss?: number;
  valid_mean_token_accuracy?: number;
}

export interface TrainerProgress {
  /** A `metrics` event (OpenAI's shape: step, train_loss, valid_loss, …). */
  metrics(metrics: TrainingMetrics): Promise<void>;
  /** A `message` event. */
  message(level: 'info' | 'warn' | 'error', text: string): Promise<void>;
  /** A checkpoint (OpenAI makes one per epoch): its adapter, usable as a model, and its metrics. */
  checkpoint(checkpoint: { step: number; epoch: number; adapterPath: string | null; upstreamModel?: string; metrics: Record<string, number> }): Promise<void>;
  /** Keeps resumable state in the database (small JSON). */
  saveState(state: Record<string, unknown>): Promise<void>;
  /**
   * Whether the job was cancelled or paused meanwhile (cheap: answered from a cache refreshed
   * in the background). On 'pause', save what is needed to resume, then return `{ stopped }`;
   * on 'cancel', return `{ stopped }` at once.
   */
  stopRequested(): 'cancel' | 'pause' | null;
}

export type TrainerResult =
  | {
      kind: 'adapter';
      /** The GGUF LoRA adapter of the fine-tuned model (served as base + adapter by llama-cpp). */
      adapterPath: string;
      trainedTokens: number;
    }
  | {
      kind: 'upstream';
      /** The upstream's name of the fine-tuned model (served through the base model's upstream). */
      upstreamModel: string;
      trainedTokens: number;
    }
  | { kind: 'stopped'; reason: 'cancel' | 'pause' };

export interface Trainer {
  run(run: TrainerRun, progress: TrainerProgress): Promise<TrainerResult>;
}

/** A trainer's failure that the job reports as is (`error.code`, `error.message`). */
export class TrainerError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'TrainerError';
  }
}
