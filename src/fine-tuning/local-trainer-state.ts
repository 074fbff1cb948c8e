/**
 * What the local trainer (local-trainer-run.ts) keeps in the job's `trainer_state` to resume:
 * where training stands (steps done, the epoch in progress and how many of its batches are
 * done) and the resumable trainer checkpoint (LoRA weights, AdamW state) it stands on, a file
 * of the job's directory named by its step. The state always names a checkpoint that exists:
 * a new one is written before the state points at it, the old one removed after.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export interface LocalTrainerState {
  version: 1;
  /** Optimizer steps done, over all epochs. */
  step: number;
  /** The epoch in progress, 0-based (n_epochs once all are done). */
  epoch: number;
  /** Batches of that epoch done. */
  position: number;
  /** The trainer checkpoint of this point, relative to the job's directory. */
  checkpoint: string;
  /** The run this state belongs to, to refuse a state of another dataset or settings. */
  examples: number;
  batchSize: number;
  epochs: number;
  /** Tokens of the training examples × epochs (OpenAI's trained_tokens). */
  trainedTokens: number;
  /** The final adapter is written. */
  done?: boolean;
}

/** The resume checkpoint file (relative) of a step. */
export function resumeCheckpointName(step: number): string {
  return join('resume', `step-${step}.ckpt`);
}

/** The saved state if it is one of this trainer's, else null. */
export function parseLocalTrainerState(state: Record<string, unknown> | null): LocalTrainerState | null {
  if (state === null || state.version !== 1) return null;
  const integer = (value: unknown) => typeof value === 'number' && Number.isInteger(value) && value >= 0;
  const { step, epoch, position, checkpoint, examples, batchSize, epochs, trainedTokens } = state;
  if (![step, epoch, position, examples, batchSize, epochs, trainedTokens].every(integer) || typeof checkpoint !== 'string') return null;
  return state as unknown as LocalTrainerState;
}

/** Why the saved state cannot be resumed from in this run (null: it can). */
export function resumeProblem(
  state: LocalTrainerState,
  run: { workDirectory: string; examples: number; batchSize: number; epochs: number },
): string | null {
  if (state.examples !== run.examples || state.batchSize !== run.batchSize || state.epochs !== run.epochs) {
    return 'the saved state is of other training data or hyperparameters';
  }
  if (state.done) return 'the job was trained, but its adapter is missing';
  if (state.checkpoint === '' || !existsSync(join(run.workDirectory, state.checkpoint))) return `its checkpoint ${state.checkpoint} is missing`;
  return null;
}
