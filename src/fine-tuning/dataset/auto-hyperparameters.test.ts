import { describe, expect, it } from 'vitest';
import { autoBatchSize, autoEpochs, autoLearningRateMultiplier, resolveHyperparameters } from './auto-hyperparameters.js';

describe('auto hyperparameters', () => {
  it('n_epochs follows OpenAI’s rule', () => {
    expect(autoEpochs(10)).toBe(10); // 100 / 10
    expect(autoEpochs(3)).toBe(25); // capped
    expect(autoEpochs(33)).toBe(3); // 99 < 100 → 100 // 33 = 3
    expect(autoEpochs(20)).toBe(5);
    expect(autoEpochs(1000)).toBe(3);
    expect(autoEpochs(8334)).toBe(2); // 25002 > 25000 → 25000 // 8334
    expect(autoEpochs(100_000)).toBe(1);
  });

  it('batch_size is ~0.2% of the examples, 1..256', () => {
    expect(autoBatchSize(10)).toBe(1);
    expect(autoBatchSize(1000)).toBe(2);
    expect(autoBatchSize(5000)).toBe(10);
    expect(autoBatchSize(1_000_000)).toBe(256);
  });

  it('learning_rate_multiplier grows with the batch size', () => {
    expect([1, 4, 5, 32, 33, 256].map(autoLearningRateMultiplier)).toEqual([0.05, 0.05, 0.1, 0.1, 0.2, 0.2]);
  });

  it('resolves auto and absent values, keeps explicit ones', () => {
    expect(resolveHyperparameters({}, { examples: 50 })).toEqual({ n_epochs: 3, batch_size: 1, learning_rate_multiplier: 0.05 });
    expect(resolveHyperparameters({ n_epochs: 'auto', batch_size: 64, learning_rate_multiplier: 'auto' }, { examples: 20 })).toEqual({
      n_epochs: 5,
      batch_size: 64,
      learning_rate_multiplier: 0.2,
    });
    expect(resolveHyperparameters({ n_epochs: 7, learning_rate_multiplier: 1.5 }, { examples: 20 })).toMatchObject({ n_epochs: 7, learning_rate_multiplier: 1.5 });
  });
});
