/**
 * The local trainer's data (local-trainer-run.ts): a chat JSONL file read example by example
 * (readExamples) and tokenized with the base model's own tokenizer and chat template
 * (ChatTokenizer) into the token sequences and loss masks the LoRA trainer takes, and the
 * order an epoch visits them in. Nothing is dropped silently: a line that cannot be parsed or
 * tokenized, or whose sequence is longer than the trainer takes, is a TrainerError naming the
 * line (the job runner validated the files already; this is a guard).
 */
import { createReadStream } from 'node:fs';
import { DatasetFormatError } from './dataset/dataset-error.js';
import { readExamples } from './dataset/read-examples.js';
import type { ChatTokenizer } from './dataset/chat-tokenizer.js';
import { TokenizationError } from './dataset/training-history.js';
import type { TrainingExample } from './local-trainer/lora-trainer.js';
import { mulberry32 } from '../util/seeded-random.js';
import { TrainerError } from './trainer-spec.js';

export interface TokenizedFile {
  examples: TrainingExample[];
  /** Tokens of all the sequences (prompt and answer, as trained). */
  totalTokens: number;
  /** Tokens of the longest sequence. */
  longest: number;
}

export interface TokenizeFileOptions {
  /** Longest sequence the trainer takes, in tokens. */
  maxTokens: number;
  /** The TrainerError code of a bad line: 'invalid_training_file' or 'invalid_validation_file'. */
  errorCode: string;
  /** The file's name in messages ("training file"). */
  label: string;
}

export async function tokenizeFile(tokenizer: ChatTokenizer, path: string, options: TokenizeFileOptions): Promise<TokenizedFile> {
  const examples: TrainingExample[] = [];
  let totalTokens = 0;
  let longest = 0;
  let line = 0;
  try {
    for await (const numbered of readExamples(createReadStream(path))) {
      line = numbered.line;
      const { tokens, lossMask } = tokenizer.tokenize(numbered.example);
      if (tokens.length > options.maxTokens) {
        throw new TrainerError(
          options.errorCode,
          `The ${options.label} has an example of ${tokens.length} tokens on line ${line}, more than the ${options.maxTokens} tokens the trainer takes.`,
        );
      }
      if (!lossMask.some((bit, i) => i > 0 && bit === 1)) {
        throw new TrainerError(options.errorCode, `The ${options.label} has an example without trained assistant tokens on line ${line}.`);
      }
      examples.push({ tokens, lossMask });
      totalTokens += tokens.length;
      longest = Math.max(longest, tokens.length);
    }
  } catch (error) {
    if (error instanceof TrainerError) throw error;
    if (error instanceof DatasetFormatError) throw new TrainerError(options.errorCode, `The ${options.label} is invalid: ${error.message}.`);
    if (error instanceof TokenizationError) throw new TrainerError(options.errorCode, `The ${options.label} has an example on line ${line} that cannot be tokenized: ${error.message}.`);
    throw error;
  }
  if (examples.length === 0) throw new TrainerError(options.errorCode, `The ${options.label} has no examples.`);
  return { examples, totalTokens, longest };
}

/**
 * The order epoch `epoch` (0-based) visits `count` examples in: a Fisher–Yates shuffle by a
 * PRNG seeded from (seed, epoch), so a resumed job sees exactly the order of an uninterrupted one.
 */
export function epochOrder(count: number, seed: number, epoch: number): number[] {
  const random = mulberry32((Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca6b)) >>> 0);
  const order = Array.from({ length: count }, (_, i) => i);
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}
