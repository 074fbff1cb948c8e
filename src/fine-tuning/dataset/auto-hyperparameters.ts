/**
 * Resolves a fine-tuning job's `"auto"` (or absent) hyperparameters from the dataset size,
 * as OpenAI does:
 * - `n_epochs`: OpenAI's rule (cookbook "Data preparation and analysis for chat model
 *   fine-tuning"): 3 epochs, raised for small datasets so that training sees at least 100
 *   examples (at most 25 epochs), lowered for large ones so that it sees at most 25,000
 *   (at least 1 epoch) — integer division, as there.
 * - `batch_size`: OpenAI's documented default, about 0.2% of the examples, here rounded up
 *   and clamped to 1..256 (and never more than the examples).
 * - `learning_rate_multiplier`: OpenAI documents 0.05, 0.1 or 0.2 "depending on final
 *   batch_size (larger learning rates tend to perform better with larger batch sizes)"
 *   without the thresholds; ours: batch ≤ 4 → 0.05, ≤ 32 → 0.1, larger → 0.2. The trainer
 *   multiplies its base learning rate by it.
 * Explicit numbers pass through unchanged (the API layer range-checks them).
 */

export const TARGET_EPOCHS = 3;
export const MIN_TARGET_EXAMPLES = 100;
export const MAX_TARGET_EXAMPLES = 25_000;
export const MIN_DEFAULT_EPOCHS = 1;
export const MAX_DEFAULT_EPOCHS = 25;
export const BATCH_SIZE_FRACTION = 0.002;
export const MAX_DEFAULT_BATCH_SIZE = 256;

export type Auto<T> = T | 'auto' | undefined;

export interface RequestedHyperparameters {
  n_epochs?: Auto<number>;
  batch_size?: Auto<number>;
  learning_rate_multiplier?: Auto<number>;
}

export interface ResolvedHyperparameters {
  n_epochs: number;
  batch_size: number;
  learning_rate_multiplier: number;
}

export function autoEpochs(examples: number): number {
  const n = Math.max(1, examples);
  if (n * TARGET_EPOCHS < MIN_TARGET_EXAMPLES) return Math.min(MAX_DEFAULT_EPOCHS, Math.floor(MIN_TARGET_EXAMPLES / n));
  if (n * TARGET_EPOCHS > MAX_TARGET_EXAMPLES) return Math.max(MIN_DEFAULT_EPOCHS, Math.floor(MAX_TARGET_EXAMPLES / n));
  return TARGET_EPOCHS;
}

export function autoBatchSize(examples: number): number {
  const size = Math.min(MAX_DEFAULT_BATCH_SIZE, Math.max(1, Math.ceil(examples * BATCH_SIZE_FRACTION)));
  return Math.max(1, Math.min(size, examples));
}

export function autoLearningRateMultiplier(batchSize: number): number {
  if (batchSize <= 4) return 0.05;
  if (batchSize <= 32) return 0.1;
  return 0.2;
}

const given = (value: Auto<number>): value is number => typeof value === 'number';

export function resolveHyperparameters(requested: RequestedHyperparameters, dataset: { examples: number }): ResolvedHyperparameters {
  const batchSize = given(requested.batch_size) ? requested.batch_size : autoBatchSize(dataset.examples);
  return {
    n_epochs: given(requested.n_epochs) ? requested.n_epochs : autoEpochs(dataset.examples),
    batch_size: batchSize,
    learning_rate_multiplier: given(requested.learning_rate_multiplier) ? requested.learning_rate_multiplier : autoLearningRateMultiplier(batchSize),
  };
}
