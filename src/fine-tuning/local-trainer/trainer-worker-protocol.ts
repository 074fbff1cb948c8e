/**
 * Messages between a LoraTrainerWorker (the caller's side) and trainer-worker.ts (the worker
 * thread running a LoraTrainer): one request, one response, matched by id.
 */
import type { LoraTrainerOptions, StepResult, TrainingExample } from './lora-trainer.js';

export type TrainerRequest =
  | { id: number; method: 'open'; options: LoraTrainerOptions }
  | { id: number; method: 'trainStep'; batch: TrainingExample[] }
  | { id: number; method: 'evaluate'; examples: TrainingExample[] }
  | { id: number; method: 'saveCheckpoint'; path: string }
  | { id: number; method: 'loadCheckpoint'; path: string }
  | { id: number; method: 'writeAdapter'; path: string; name?: string }
  | { id: number; method: 'setLearningRate'; learningRate: number }
  | { id: number; method: 'close' };

/** What every successful response carries besides its result. */
export interface TrainerStatus {
  /** Optimizer steps taken. */
  step: number;
}

export type TrainerResponse =
  | { id: number; ok: true; status: TrainerStatus; result?: StepResult }
  | { id: number; ok: false; error: { message: string; stack?: string } };
