/**
 * Validates a chat fine-tuning file (JSONL) the way OpenAI does before a job starts, reading
 * it line by line (jsonl-lines.ts: memory stays at one line, whatever the file's size).
 * Each non-blank line must be a valid example (check-example.ts); a blank line is an error
 * unless only blank lines follow it. Each valid example's tokens are counted with the
 * caller's `countTokens` (chat-tokenizer.ts for a local model, gpt-token-count.ts for an
 * OpenAI-style one) and must fit `contextWindow`. The file needs `minExamples` usable
 * examples. Reading stops once `maxErrors` errors are collected (`truncated`).
 *
 * The result is plain data (stored with the job, sent to clients):
 * - `ok`: no error at all;
 * - `examples`: valid examples that fit the context window; `lines`: non-blank lines read;
 * - `errors`: `{ line, code, message }` in file order, codes from dataset-error.ts, at most
 *   `maxErrors` (file-level errors, `line: null`, come last);
 * - `tokens`: over the usable examples, `total`, `max` (largest example) and `trained`
 *   (tokens trained on) when every count reported it.
 * `estimateTrainedTokens(validation, nEpochs)` gives what OpenAI bills: tokens × epochs.
 */
import { DATASET_ERROR_CODES, type DatasetError, type ExampleProblem } from './dataset-error.js';
import { parseExampleLine } from './check-example.js';
import type { TrainingExample } from './example-types.js';
import { isBlank, readLines, type DatasetSource } from './jsonl-lines.js';

/** A token count: the example's tokens, and optionally how many of them are trained on. */
export type TokenCount = number | { tokens: number; trainedTokens: number };

export interface ValidateDatasetOptions {
  /** Tokens one example may have (the base model's context window). */
  contextWindow: number;
  countTokens: (example: TrainingExample) => TokenCount | Promise<TokenCount>;
  /** Usable examples the file needs (OpenAI: 10). */
  minExamples?: number;
  /** Stop reading after this many errors (default 100). */
  maxErrors?: number;
}

export interface DatasetTokenStats {
  total: number;
  max: number;
  /** Tokens trained on (assistant messages with weight 1), when the counter reports them. */
  trained?: number;
}

export interface DatasetValidation {
  ok: boolean;
  examples: number;
  lines: number;
  errors: DatasetError[];
  /** Reading stopped on reaching `maxErrors`: later lines (if any) were not checked. */
  truncated: boolean;
  tokens: DatasetTokenStats;
}

export const DEFAULT_MIN_EXAMPLES = 10;
export const DEFAULT_MAX_ERRORS = 100;

export async function validateDataset(source: DatasetSource, options: ValidateDatasetOptions): Promise<DatasetValidation> {
  const minExamples = options.minExamples ?? DEFAULT_MIN_EXAMPLES;
  const maxErrors = Math.max(1, options.maxErrors ?? DEFAULT_MAX_ERRORS);
  const errors: DatasetError[] = [];
  const tokens: DatasetTokenStats = { total: 0, max: 0, trained: 0 };
  let examples = 0;
  let lines = 0;
  let truncated = false;
  let blankLines: number[] = [];
  const add = (line: number | null, problem: ExampleProblem): boolean => {
    if (errors.length >= maxErrors) {
      truncated = true;
      return false;
    }
    errors.push({ line, code: problem.code, message: problem.message });
    return true;
  };

  const lineSource = readLines(source);
  try {
    for await (const { number, text } of lineSource) {
      if (isBlank(text)) {
        blankLines.push(number);
        continue;
      }
      for (const blank of blankLines) add(blank, { code: DATASET_ERROR_CODES.blank_line, message: 'blank line between examples' });
      blankLines = [];
      lines++;
      if (text === null) add(number, { code: DATASET_ERROR_CODES.invalid_utf8, message: 'the line is not valid UTF-8' });
      else {
        const check = parseExampleLine(text);
        if (!check.ok) for (const problem of check.problems) add(number, problem);
        else {
          let count: TokenCount;
          try {
            count = await options.countTokens(check.example);
          } catch (error) {
            add(number, { code: DATASET_ERROR_CODES.token_count_failed, message: `cannot count the example's tokens: ${(error as Error).message}` });
            if (truncated) break;
            continue;
          }
          const exampleTokens = typeof count === 'number' ? count : count.tokens;
          if (exampleTokens > options.contextWindow) {
            add(number, { code: DATASET_ERROR_CODES.too_many_tokens, message: `the example has ${exampleTokens} tokens, more than the context window of ${options.contextWindow}` });
          } else {
            examples++;
            tokens.total += exampleTokens;
            tokens.max = Math.max(tokens.max, exampleTokens);
            if (typeof count === 'number') delete tokens.trained;
            else if (tokens.trained !== undefined) tokens.trained += count.trainedTokens;
          }
        }
      }
      if (truncated || errors.length >= maxErrors) {
        truncated = true;
        break;
      }
    }
  } finally {
    await lineSource.return(undefined);
  }
  if (!truncated && examples < minExamples) {
    errors.push({ line: null, code: DATASET_ERROR_CODES.too_few_examples, message: `the file has ${examples} usable example${examples === 1 ? '' : 's'}; at least ${minExamples} are required` });
  }
  return { ok: errors.length === 0, examples, lines, errors, truncated, tokens };
}

/** Tokens a job trains on (and OpenAI bills): the dataset's tokens once per epoch. */
export function estimateTrainedTokens(validation: Pick<DatasetValidation, 'tokens'>, nEpochs: number): number {
  return validation.tokens.total * nEpochs;
}
