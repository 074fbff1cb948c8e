/** The trainers a fine-tuning job can use, by the base model's `fine_tuning.trainer`. */
import { createCommandTrainer } from './command-trainer.js';
import { createLocalTrainer } from './local-trainer-run.js';
import type { Trainer } from './trainer-spec.js';
import { createUpstreamTrainer } from './upstream-trainer.js';

export function createFineTuningTrainers(): { local: Trainer; upstream: Trainer; command: Trainer } {
  return { local: createLocalTrainer(), upstream: createUpstreamTrainer(), command: createCommandTrainer() };
}
